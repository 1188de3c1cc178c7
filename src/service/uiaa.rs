//! User-interactive authentication: the 401 dance that guards registration, password changes,
//! account deactivation and device deletion.
//!
//! Sessions live in memory for a short while: a client that restarts mid-flow simply starts a
//! new one. Each session is bound to the endpoint and (for logged-in users) the user it began
//! with, so a session completed for one thing cannot authorize another.

use ruma::api::client::uiaa::{AuthData, AuthFlow, AuthType, UiaaInfo, UserIdentifier};
use ruma::api::error::{ErrorKind, StandardErrorBody};
use ruma::{OwnedUserId, UserId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::service::Services;

const SESSION_LIFETIME: Duration = Duration::from_secs(15 * 60);
const MAX_SESSIONS: usize = 100_000;

/// What an endpoint asks for.
pub struct Flows {
    pub endpoint: &'static str,
    pub flows: Vec<AuthFlow>,
    /// The logged-in user, for endpoints that re-confirm an identity (`m.login.password`).
    pub user: Option<OwnedUserId>,
}

/// What a completed authentication proved, for the endpoint to act on.
#[derive(Debug, Default)]
pub struct Completed {
    /// The registration token used, if any: the registration consumes it on success.
    pub registration_token: Option<String>,
}

#[derive(Debug)]
struct UiaaSession {
    created: Instant,
    endpoint: &'static str,
    user: Option<OwnedUserId>,
    completed: Vec<AuthType>,
    registration_token: Option<String>,
}

#[derive(Default)]
pub struct Uiaa {
    sessions: Mutex<HashMap<String, UiaaSession>>,
}

impl Uiaa {
    /// Runs one step of the flow. `Ok` once every stage of some flow is complete; otherwise the
    /// 401 the client needs to carry on (`Error::Uiaa`).
    pub async fn authenticate(
        &self,
        services: &Services,
        flows: Flows,
        auth: Option<&AuthData>,
    ) -> Result<Completed> {
        let Some(auth) = auth else {
            let session = self.start(&flows)?;
            return Err(challenge(&flows, Vec::new(), session, None));
        };
        let session_id = match auth.session() {
            Some(id) => id.to_owned(),
            None => self.start(&flows)?,
        };
        let completed_before = self.check_session(&session_id, &flows)?;

        let stage_result = self.run_stage(services, &flows, auth).await;
        let mut sessions = self.lock()?;
        let session = sessions.get_mut(&session_id).ok_or_else(|| {
            Error::new(
                http::StatusCode::BAD_REQUEST,
                ErrorKind::Unknown,
                "Unknown UIA session",
            )
        })?;
        match stage_result {
            Err(StageError::Fatal(err)) => Err(err),
            Err(StageError::Failed(body)) => {
                Err(challenge(&flows, completed_before, session_id, Some(body)))
            }
            Ok((stage, token)) => {
                if !session.completed.contains(&stage) {
                    session.completed.push(stage);
                }
                if token.is_some() {
                    session.registration_token = token;
                }
                let done = flows
                    .flows
                    .iter()
                    .any(|flow| flow.stages.iter().all(|s| session.completed.contains(s)));
                if done {
                    let session = sessions.remove(&session_id);
                    Ok(Completed {
                        registration_token: session.and_then(|s| s.registration_token),
                    })
                } else {
                    let completed = session.completed.clone();
                    Err(challenge(&flows, completed, session_id, None))
                }
            }
        }
    }

    fn start(&self, flows: &Flows) -> Result<String> {
        let mut sessions = self.lock()?;
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.created) < SESSION_LIFETIME);
        if sessions.len() >= MAX_SESSIONS {
            return Err(Error::limit_exceeded(Duration::from_secs(10)));
        }
        let id = ruma::TransactionId::new().to_string();
        sessions.insert(
            id.clone(),
            UiaaSession {
                created: now,
                endpoint: flows.endpoint,
                user: flows.user.clone(),
                completed: Vec::new(),
                registration_token: None,
            },
        );
        Ok(id)
    }

    /// The stages completed so far, after checking the session belongs to this request.
    fn check_session(&self, session_id: &str, flows: &Flows) -> Result<Vec<AuthType>> {
        let sessions = self.lock()?;
        let session = sessions
            .get(session_id)
            .filter(|s| s.created.elapsed() < SESSION_LIFETIME)
            .ok_or_else(|| {
                Error::new(
                    http::StatusCode::BAD_REQUEST,
                    ErrorKind::Unknown,
                    "Unknown UIA session",
                )
            })?;
        if session.endpoint != flows.endpoint || session.user != flows.user {
            return Err(Error::forbidden(
                "This UIA session was started for another request",
            ));
        }
        Ok(session.completed.clone())
    }

    async fn run_stage(
        &self,
        services: &Services,
        flows: &Flows,
        auth: &AuthData,
    ) -> Result<(AuthType, Option<String>), StageError> {
        let offered = |stage: &AuthType| flows.flows.iter().any(|f| f.stages.contains(stage));
        let stage = auth.auth_type().filter(offered).ok_or_else(|| {
            StageError::failed(
                ErrorKind::Unrecognized,
                "This authentication type is not offered here",
            )
        })?;
        match auth {
            AuthData::Dummy(_) => Ok((stage, None)),
            AuthData::Password(password) => {
                let user = flows.user.as_deref().ok_or_else(|| {
                    StageError::failed(
                        ErrorKind::Forbidden,
                        "Password authentication needs a logged-in user",
                    )
                })?;
                let UserIdentifier::Matrix(id) = &password.identifier else {
                    return Err(StageError::failed(
                        ErrorKind::Forbidden,
                        "Only user identifiers are supported",
                    ));
                };
                let named = services
                    .users
                    .parse_local_user(&id.user)
                    .map_err(StageError::Fatal)?;
                if named != user {
                    return Err(StageError::failed(
                        ErrorKind::Forbidden,
                        "Identifier does not match the logged-in user",
                    ));
                }
                if services
                    .users
                    .check_password(user, &password.password)
                    .await
                    .map_err(StageError::Fatal)?
                {
                    Ok((stage, None))
                } else {
                    Err(StageError::failed(ErrorKind::Forbidden, "Invalid password"))
                }
            }
            AuthData::RegistrationToken(token) => {
                if services
                    .registration_tokens
                    .reserve(&token.token)
                    .map_err(StageError::Fatal)?
                {
                    Ok((stage, Some(token.token.clone())))
                } else {
                    Err(StageError::failed(
                        ErrorKind::Unauthorized,
                        "Invalid registration token",
                    ))
                }
            }
            _ => Err(StageError::failed(
                ErrorKind::Unrecognized,
                "This authentication type is not supported",
            )),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, UiaaSession>>> {
        self.sessions
            .lock()
            .map_err(|_| Error::internal("UIA session table poisoned"))
    }
}

enum StageError {
    /// The stage was tried and failed: the client may try again in the same session.
    Failed(StandardErrorBody),
    /// Something else went wrong: report it as is.
    Fatal(Error),
}

impl StageError {
    fn failed(kind: ErrorKind, message: &str) -> Self {
        StageError::Failed(StandardErrorBody::new(kind, message.to_owned()))
    }
}

fn challenge(
    flows: &Flows,
    completed: Vec<AuthType>,
    session: String,
    error: Option<StandardErrorBody>,
) -> Error {
    let mut info = UiaaInfo::new(flows.flows.clone());
    info.completed = completed;
    info.session = Some(session);
    info.params = serde_json::value::to_raw_value(&serde_json::json!({})).ok();
    info.auth_error = error.map(Box::new);
    Error::Uiaa(Box::new(info))
}

/// The flow for endpoints that re-confirm a logged-in user's password.
pub fn password_flows(endpoint: &'static str, user: &UserId) -> Flows {
    Flows {
        endpoint,
        flows: vec![AuthFlow::new(vec![AuthType::Password])],
        user: Some(user.to_owned()),
    }
}

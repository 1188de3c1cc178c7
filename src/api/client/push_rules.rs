//! Push rules: `GET /pushrules/`, `GET /pushrules/global/` and the rule CRUD under
//! `/pushrules/global/{kind}/{ruleId}` (`/enabled`, `/actions`). Rules live in the user's
//! `m.push_rules` account data and drive unread counts.

use axum::extract::State;
use ruma::api::client::push::{
    delete_pushrule, get_pushrule, get_pushrule_actions, get_pushrule_enabled, get_pushrules_all,
    get_pushrules_global_scope, set_pushrule, set_pushrule_actions, set_pushrule_enabled,
};
use ruma::push::{InsertPushRuleError, RemovePushRuleError, RuleKind};

use crate::api::ruma::{AppState, Ruma, RumaRouter as _};
use crate::error::{Error, Result};

pub fn routes(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .ruma(all)
        .ruma(global)
        .ruma(get_rule)
        .ruma(set_rule)
        .ruma(delete_rule)
        .ruma(get_enabled)
        .ruma(set_enabled)
        .ruma(get_actions)
        .ruma(set_actions)
}

fn not_found(kind: &RuleKind, rule_id: &str) -> Error {
    Error::not_found(format!("No push rule {kind}/{rule_id}"))
}

async fn all(
    State(services): State<AppState>,
    request: Ruma<get_pushrules_all::v3::Request>,
) -> Result<get_pushrules_all::v3::Response> {
    let user = &request.identity()?.user_id;
    Ok(get_pushrules_all::v3::Response::new(
        services.push_rules(user)?.as_ref().clone(),
    ))
}

async fn global(
    State(services): State<AppState>,
    request: Ruma<get_pushrules_global_scope::v3::Request>,
) -> Result<get_pushrules_global_scope::v3::Response> {
    let user = &request.identity()?.user_id;
    Ok(get_pushrules_global_scope::v3::Response::new(
        services.push_rules(user)?.as_ref().clone(),
    ))
}

async fn get_rule(
    State(services): State<AppState>,
    request: Ruma<get_pushrule::v3::Request>,
) -> Result<get_pushrule::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let rules = services.push_rules(user)?;
    let rule = rules
        .get(body.kind.clone(), &body.rule_id)
        .ok_or_else(|| not_found(&body.kind, &body.rule_id))?;
    Ok(get_pushrule::v3::Response::new(rule.into()))
}

async fn set_rule(
    State(services): State<AppState>,
    request: Ruma<set_pushrule::v3::Request>,
) -> Result<set_pushrule::v3::Response> {
    let user = request.identity()?.user_id.clone();
    let body = request.body;
    services.edit_push_rules(&user, |rules| {
        rules
            .insert(body.rule, body.after.as_deref(), body.before.as_deref())
            .map_err(|err| match err {
                InsertPushRuleError::UnknownRuleId => {
                    Error::not_found("`before` or `after` names no rule of this kind")
                }
                other => Error::invalid_param(other.to_string()),
            })
    })?;
    Ok(set_pushrule::v3::Response::new())
}

async fn delete_rule(
    State(services): State<AppState>,
    request: Ruma<delete_pushrule::v3::Request>,
) -> Result<delete_pushrule::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    services.edit_push_rules(user, |rules| {
        rules
            .remove(body.kind.clone(), &body.rule_id)
            .map_err(|err| match err {
                RemovePushRuleError::NotFound => not_found(&body.kind, &body.rule_id),
                other => Error::invalid_param(other.to_string()),
            })
    })?;
    Ok(delete_pushrule::v3::Response::new())
}

async fn get_enabled(
    State(services): State<AppState>,
    request: Ruma<get_pushrule_enabled::v3::Request>,
) -> Result<get_pushrule_enabled::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let rules = services.push_rules(user)?;
    let rule = rules
        .get(body.kind.clone(), &body.rule_id)
        .ok_or_else(|| not_found(&body.kind, &body.rule_id))?;
    Ok(get_pushrule_enabled::v3::Response::new(rule.enabled()))
}

async fn set_enabled(
    State(services): State<AppState>,
    request: Ruma<set_pushrule_enabled::v3::Request>,
) -> Result<set_pushrule_enabled::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    services.edit_push_rules(user, |rules| {
        rules
            .set_enabled(body.kind.clone(), &body.rule_id, body.enabled)
            .map_err(|_| not_found(&body.kind, &body.rule_id))
    })?;
    Ok(set_pushrule_enabled::v3::Response::new())
}

async fn get_actions(
    State(services): State<AppState>,
    request: Ruma<get_pushrule_actions::v3::Request>,
) -> Result<get_pushrule_actions::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    let rules = services.push_rules(user)?;
    let rule = rules
        .get(body.kind.clone(), &body.rule_id)
        .ok_or_else(|| not_found(&body.kind, &body.rule_id))?;
    Ok(get_pushrule_actions::v3::Response::new(
        rule.actions().to_vec(),
    ))
}

async fn set_actions(
    State(services): State<AppState>,
    request: Ruma<set_pushrule_actions::v3::Request>,
) -> Result<set_pushrule_actions::v3::Response> {
    let user = &request.identity()?.user_id;
    let body = &request.body;
    services.edit_push_rules(user, |rules| {
        rules
            .set_actions(body.kind.clone(), &body.rule_id, body.actions.clone())
            .map_err(|_| not_found(&body.kind, &body.rule_id))
    })?;
    Ok(set_pushrule_actions::v3::Response::new())
}

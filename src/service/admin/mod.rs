//! What server admins do that ordinary users cannot: manage other accounts, delete and block
//! rooms, send server notices. The admin API and the offline CLI both call these.

pub mod room_deletion;
pub mod rooms;
pub mod server_notices;
pub mod users;

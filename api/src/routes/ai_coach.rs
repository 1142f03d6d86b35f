//! (being written)

use salvo::prelude::*;

pub fn router() -> Router {
    Router::new()
}

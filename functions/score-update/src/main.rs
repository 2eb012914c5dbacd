//! score-update: `POST /events` behind API Gateway (HTTP API, payload 2.0). The handler is
//! the one the local server runs (`leadflow_lambda::http` over `leadflow_api`).

use std::sync::Arc;

use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow_lambda::init_tracing();
    let api = Arc::new(leadflow_lambda::start(leadflow_lambda::api_from_env()).await?);
    run(service_fn(move |request| {
        let api = Arc::clone(&api);
        async move { leadflow_lambda::http(&api, request).await }
    }))
    .await
}

//! form-submission: `POST /leads` behind API Gateway (HTTP API, payload 2.0). The handler is
//! the one the local server runs (`leadflow_lambda::http` over `leadflow_api`).

use std::sync::Arc;

use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow_lambda::init_tracing();
    let config = leadflow_lambda::Config::from_env()?;
    let sdk = leadflow_lambda::sdk_config().await;
    let api = Arc::new(leadflow_lambda::api(&config, &sdk).await?);
    run(service_fn(move |request| {
        let api = Arc::clone(&api);
        async move { leadflow_lambda::http(&api, request).await }
    }))
    .await
}

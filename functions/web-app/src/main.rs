//! web-app: the reps' and managers' pages behind API Gateway (HTTP API, payload 2.0):
//! `/a/{token}` and `/app/...`. The handler is the one the local server runs
//! (`leadflow_lambda::web_http` over `leadflow_web`).

use std::sync::Arc;

use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow_lambda::init_tracing();
    let web = Arc::new(leadflow_lambda::start(leadflow_lambda::web_from_env()).await?);
    run(service_fn(move |request| {
        let web = Arc::clone(&web);
        async move { leadflow_lambda::web_http(&web, request).await }
    }))
    .await
}

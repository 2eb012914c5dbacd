//! pipeline-cleanup: the nightly clean-up, triggered by EventBridge Scheduler; "now" is
//! the schedule event's `time`.

use std::sync::Arc;

use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    leadflow_lambda::init_tracing();
    let service = leadflow_lambda::start(leadflow_lambda::service_from_env()).await?;
    run(service_fn(move |event| {
        let service = Arc::clone(&service);
        async move { leadflow_lambda::cleanup(&service, event).await }
    }))
    .await
}

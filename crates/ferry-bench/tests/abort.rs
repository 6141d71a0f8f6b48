//! ABOR after a download that had already ended: the control connection must stay in step.
//! (The soak on object storage found the bench one reply behind after such an ABOR: it read
//! the transfer's 226 as the ABOR's and left the ABOR's own 225 for the next command.)

mod support;

use std::time::Duration;

use ferry_bench::{Control, Limits};
use support::Server;

#[test]
fn abor_after_a_finished_download_leaves_the_next_reply_to_the_next_command() {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let limits = Limits::default();
        let mut control = Control::login(&server.target(), &limits).await.unwrap();
        control.expect("TYPE I", 2).await.unwrap();
        for round in 0..3 {
            let data = control.open_passive().await.unwrap();
            // 1715 bytes: sent whole at once, the transfer ends before the ABOR arrives.
            let stream = control
                .start_transfer("RETR small.txt", data)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(stream);
            control.abort(Duration::from_secs(10)).await.unwrap();
            let reply = control.expect("NOOP", 2).await.unwrap();
            assert_eq!(reply.code, 200, "round {round}: NOOP read {reply:?}");
            let reply = control.expect("PWD", 2).await.unwrap();
            assert_eq!(reply.code, 257, "round {round}: PWD read {reply:?}");
        }
    });
}

//! `/api/activate` under a crowd of wrong guesses: every request gets an answer (422 or 429 with
//! Retry-After), and the guesses that get through are bounded per client and per address.

use crate::helpers::both_backends;
use crate::http_app::{HttpApp, MEMBERS};

both_backends! {
    async fn a_crowd_of_wrong_guesses_is_answered_and_throttled(app) {
        app.seed(MEMBERS).await;
        let http = HttpApp::start(app, |_| {}).await;
        let mut guesses = tokio::task::JoinSet::new();
        for i in 0..60 {
            let (client, url) = (http.client.clone(), format!("{}/api/activate", http.base));
            // Half at one address, half spread over many: both kinds of throttle are met.
            let email = if i % 2 == 0 { "ada@school.example".to_owned() } else { format!("guess{i}@school.example") };
            guesses.spawn(async move {
                let response = client
                    .post(url)
                    .json(&serde_json::json!({"email": email, "workspace": "acme", "code": "AAAA-AAAA-AA"}))
                    .send()
                    .await
                    .unwrap();
                let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                (response.status().as_u16(), retry_after)
            });
        }
        let (mut rejected, mut throttled) = (0, 0);
        while let Some(answer) = guesses.join_next().await {
            match answer.unwrap() {
                (422, None) => rejected += 1,
                (429, Some(seconds)) => {
                    assert!(seconds.parse::<u64>().unwrap() >= 1);
                    throttled += 1;
                }
                other => panic!("unexpected answer {other:?}"),
            }
        }
        // 30 per client per minute reach the check at all; of those, one address gets 4 tries.
        assert!(rejected <= 30, "{rejected} rejected");
        assert_eq!(rejected + throttled, 60);
        assert!(throttled >= 30, "{throttled} throttled");
        http.stop().await;
    }
}

//! A reader that goes away (`| head`) ends the command quietly, as any Unix filter.

use crate::common::Fixture;
use std::process::Stdio;

#[test]
fn a_closed_pipe_is_a_quiet_end() {
    let fx = Fixture::mini();
    fx.ready();
    fx.cmd(&["users", "add", "ana"]).assert().success();
    let ids: Vec<String> = fx.ids().iter().map(|i| i.to_string()).collect();
    let mut args = vec!["like", "--user", "ana"];
    args.extend(ids.iter().map(String::as_str));
    fx.cmd(&args).assert().success();
    for json in [true, false] {
        let mut cmd = fx.std_cmd(&["likes", "--user", "ana"]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // Closed before the command writes a byte, so its first write meets a broken pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "json {json}: {err}"
        );
        assert!(
            out.status.success() || out.status.code().is_some(),
            "json {json}: killed by a signal"
        );
    }
}

//! `rusty_rail`: the balancer's control process.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::SUCCESS
}

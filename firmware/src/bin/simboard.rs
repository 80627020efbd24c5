//! The simulated board (see `firmware::board`).

fn main() {}

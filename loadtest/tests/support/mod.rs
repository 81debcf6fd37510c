//! Helpers of the fault-injection tests.

pub mod proxy;

//! Types and rules with no I/O: money, currencies, ids, the pipeline
//! definition, and the records the server keeps.

pub mod binary;
pub mod branch;
pub mod brand;
pub mod currency;
pub mod customer;
pub mod customer_history;
pub mod deal;
pub mod event;
pub mod fx;
pub mod history;
pub mod ids;
pub mod job;
pub mod money;
pub mod patch;
pub mod pipeline;
pub mod record;
pub mod schema;
pub mod session;
pub mod settlement;
pub mod stored_deal;
pub mod task;

pub mod time;
pub mod token;
pub mod validate;

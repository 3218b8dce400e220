//! The wasmtime configuration every plugin engine uses, in a file of its own with no
//! `crate::` paths: the build script includes it too, to compile the built-in plugins
//! ahead of time with exactly the settings the daemon checks them against. Anything
//! that changes generated code (the memory reservation, epochs, guard size) must be set
//! here and only here, or the precompiled built-ins stop matching and every start pays
//! cranelift again.

/// `[plugins] memory_limit` when the config does not set it; the built-ins are
/// precompiled for the engine this gives.
pub const DEFAULT_MEMORY_LIMIT: u64 = 16 << 20;

/// Component instances the pool holds at once (all plugins, pooled and in flight).
pub const MAX_INSTANCES: u32 = 512;

/// The memory slot for `memory_limit`: whole wasm pages.
pub fn slot_size(memory_limit: u64) -> u64 {
    memory_limit.next_multiple_of(64 * 1024)
}

/// The engine configuration for memory slots of `slot` bytes (see [`slot_size`]).
pub fn engine_config(slot: u64) -> wasmtime::Result<wasmtime::Config> {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 4)
        .total_memories(MAX_INSTANCES)
        .total_tables(MAX_INSTANCES * 2)
        .max_memories_per_component(2)
        .max_memory_size(usize::try_from(slot)?);
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_reservation(slot)
        .memory_guard_size(64 * 1024)
        .memory_reservation_for_growth(0)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    Ok(config)
}

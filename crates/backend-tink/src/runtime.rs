//! Running the async KMS SDK clients from Tink's synchronous `Aead` trait.
//!
//! Each KMS AEAD owns a private current-thread tokio runtime. Outside any runtime the call
//! is driven on the caller's thread (`block_on`). Inside a runtime — current-thread or
//! multi-thread — blocking that runtime's thread on another runtime panics, and
//! `block_in_place` panics on a current-thread runtime, so the call is driven on a short-lived
//! helper thread instead and the caller's thread waits for it. KMS calls happen only when a
//! keyset is created or opened, so the thread is cheap next to the network round trip.
//!
//! Dropping a tokio runtime inside another runtime panics too; the runtime is shut down in
//! the background instead.

use std::future::Future;

/// A private runtime for the SDK client's futures, usable from sync and async callers.
pub(crate) struct KmsRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl KmsRuntime {
    /// A current-thread runtime with I/O and timers.
    pub(crate) fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("keyhold-kms")
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `future` to completion on the private runtime and returns its output. Fails only
    /// if no helper thread can be started (the system is out of threads).
    pub(crate) fn block_on<F>(&self, future: F) -> std::io::Result<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the KMS runtime was shut down"))?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Ok(runtime.block_on(future));
        }
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("keyhold-kms-call".to_owned())
                .spawn_scoped(scope, || runtime.block_on(future))?;
            match helper.join() {
                Ok(output) => Ok(output),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for KmsRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer() -> u32 {
        tokio::task::yield_now().await;
        42
    }

    #[test]
    fn works_from_sync_code() {
        let rt = KmsRuntime::new().unwrap();
        assert_eq!(rt.block_on(answer()).unwrap(), 42);
    }

    #[test]
    fn works_inside_a_current_thread_runtime() {
        let rt = KmsRuntime::new().unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(outer.block_on(async { rt.block_on(answer()).unwrap() }), 42);
        // Dropping inside a runtime must not panic either.
        outer.block_on(async move { drop(rt) });
    }

    #[test]
    fn works_inside_a_multi_thread_runtime() {
        let rt = KmsRuntime::new().unwrap();
        let outer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let value = outer.block_on(async move {
            tokio::spawn(async move {
                let v = rt.block_on(answer()).unwrap();
                drop(rt);
                v
            })
            .await
            .unwrap()
        });
        assert_eq!(value, 42);
    }
}

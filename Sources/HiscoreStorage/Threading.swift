#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex with condition variables on it.
///
/// Hand-rolled because the storage threads need timed condition waits on the monotonic clock
/// (the async-mode flush interval), which neither `Synchronization.Mutex` nor NIO provides here.
final class ConditionLock: @unchecked Sendable {
    fileprivate let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A condition variable bound to a `ConditionLock`; waits use CLOCK_MONOTONIC.
final class Condition: @unchecked Sendable {
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private let lock: ConditionLock

    init(_ lock: ConditionLock) {
        self.lock = lock
        cond = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(cond)
        cond.deallocate()
    }

    /// Waits (lock held) until signalled; may wake spuriously, so callers loop on their predicate.
    func wait() { pthread_cond_wait(cond, lock.mutex) }

    /// Waits until signalled or the monotonic clock reaches `deadline` (nanoseconds).
    func wait(untilMonotonic deadline: UInt64) {
        var spec = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_cond_timedwait(cond, lock.mutex, &spec)
    }

    func signal() { pthread_cond_signal(cond) }
    func broadcast() { pthread_cond_broadcast(cond) }
}

/// A dedicated OS thread (not a pool thread: the log writer blocks in fsync for milliseconds and
/// must not starve an executor).
final class WorkerThread: @unchecked Sendable {
    private final class Body {
        let name: String  // kept for debugging (pthread_setname_np is not visible from Swift's Glibc)
        let run: @Sendable () -> Void
        init(name: String, run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }

    private var thread = pthread_t()

    /// Starts the thread. Throws when the system refuses one (EAGAIN: the process or user is at
    /// its thread limit, or memory is short): a condition of the machine, reported, not a trap.
    /// `refusal` (tests only; nil in production) is an error number to fail with as if
    /// `pthread_create` had returned it, without starting a thread.
    init(name: String, refusal: Int32? = nil, _ run: @escaping @Sendable () -> Void) throws(StorageError) {
        let retained = Unmanaged.passRetained(Body(name: name, run: run))
        let result = if let refusal { refusal } else {
            pthread_create(&thread, nil, { raw in
                guard let raw else { return nil }
                let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
                body.run()
                return nil
            }, retained.toOpaque())
        }
        if result != 0 {
            retained.release()
            throw .io(operation: "pthread_create (\(name))", path: "", errno: result)
        }
    }

    func join() { pthread_join(thread, nil) }
}

extension WorkerThread {
    /// Lets the thread release its resources on exit without a `join`.
    func detach() { pthread_detach(thread) }
}

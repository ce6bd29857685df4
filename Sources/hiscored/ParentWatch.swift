import CProcessWatch
import Dispatch
import Glibc

/// `--exit-with-parent` and `--exit-with-process PID`: hiscored stops (as on SIGTERM: drain,
/// flush, exit) once the process that started it, or process PID, has exited. For test
/// harnesses and supervisors: a harness killed before it could stop its server would otherwise
/// leave it running, holding its port and data directory.
///
/// Why a pidfd and not `PR_SET_PDEATHSIG`: the death signal follows the parent *thread* that
/// forked, and a harness's thread pool retires idle threads, which would stop a server whose
/// harness is alive. A pidfd turns readable when the whole process exits; libdispatch watches it
/// with the rest of its descriptors, so nothing wakes until then.
///
/// The parent is whatever `getppid()` names at start-up: PID 1 too (a harness that is a
/// container's init), so a hiscored re-parented before it started watches its new parent.
/// A harness that must not race with that passes its own PID to `--exit-with-process`, which
/// refuses to start if that process is already gone.
enum ParentWatch {
    enum Failure: Error, CustomStringConvertible {
        case gone(pid: pid_t)
        case unsupported(errno: Int32)

        var description: String {
            switch self {
            case .gone(let pid): "--exit-with-process: process \(pid) has already exited"
            case .unsupported(let code):
                "--exit-with-parent / --exit-with-process: cannot watch the process (pidfd_open: \(String(cString: strerror(code))); Linux 5.3 or later is needed)"
            }
        }
    }

    /// Watches the parent process; `onExit` runs once when it exits. Keep the source alive.
    static func watchParent(onExit: @escaping @Sendable () -> Void) throws(Failure) -> any DispatchSourceRead {
        let parent = getppid()
        let source = try watch(pid: parent, onExit: onExit)
        // The parent may have exited between getppid and pidfd_open: hiscored was re-parented
        // then, and the descriptor names whatever process took the number (if any).
        guard getppid() == parent else {
            source.cancel()
            onExit()
            return source
        }
        return source
    }

    /// Watches process `pid`; `onExit` runs once when it exits. Keep the source alive.
    static func watch(pid: pid_t, onExit: @escaping @Sendable () -> Void) throws(Failure) -> any DispatchSourceRead {
        let descriptor = hiscore_pidfd_open(pid)
        guard descriptor >= 0 else {
            if errno == ESRCH { throw .gone(pid: pid) }
            throw .unsupported(errno: errno)
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: .global())
        source.setEventHandler {
            source.cancel()
            onExit()
        }
        source.setCancelHandler { close(descriptor) }
        source.resume()
        return source
    }
}

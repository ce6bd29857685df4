import CProcessWatch
import Dispatch
import Glibc

/// `--exit-with-parent`: hiscored stops (as on SIGTERM: drain, flush, exit) once the process that
/// started it has exited. For test harnesses and supervisors: a harness killed before it could
/// stop its server would otherwise leave it running, holding its port and data directory.
///
/// Why a pidfd and not `PR_SET_PDEATHSIG`: the death signal follows the parent *thread* that
/// forked, and a harness's thread pool retires idle threads, which would stop a server whose
/// harness is alive. The parent's pidfd turns readable when the whole process exits; libdispatch
/// watches it with the rest of its descriptors, so nothing wakes until then.
enum ParentWatch {
    enum Failure: Error, CustomStringConvertible {
        case orphaned
        case unsupported(errno: Int32)

        var description: String {
            switch self {
            case .orphaned: "--exit-with-parent: the process that started hiscored has already exited"
            case .unsupported(let code):
                "--exit-with-parent: cannot watch the parent process (pidfd_open: \(String(cString: strerror(code))); Linux 5.3 or later is needed)"
            }
        }
    }

    /// Starts watching; `onExit` runs once when the parent exits. Keep the returned source alive.
    static func start(onExit: @escaping @Sendable () -> Void) throws(Failure) -> any DispatchSourceRead {
        let parent = getppid()
        guard parent > 1 else { throw .orphaned }
        let descriptor = hiscore_pidfd_open(parent)
        guard descriptor >= 0 else { throw .unsupported(errno: errno) }
        // The parent may have exited between getppid and pidfd_open; then hiscored was
        // re-parented and the descriptor could name another process that took the number.
        guard getppid() == parent else {
            close(descriptor)
            throw .orphaned
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

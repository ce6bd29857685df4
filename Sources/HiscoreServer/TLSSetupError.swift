#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TLS file that cannot be used: missing, unreadable, not PEM, or a key that does not match its
/// certificate. Thrown by `HiscoreServer.start` before anything is opened or bound.
public struct TLSSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file at fault.
    public var file: String
    public var problem: String

    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "TLS: \(file): \(problem)" }

    /// Why `path` could not be loaded as a `kind` ("certificate", "private key"): the OS error
    /// when the file cannot be opened, otherwise `parseProblem`.
    static func unusable(_ path: String, kind: String, parseProblem: String) -> TLSSetupError {
        if access(path, R_OK) != 0 {
            return TLSSetupError(file: path, problem: "cannot read the \(kind) file: \(String(cString: strerror(errno)))")
        }
        return TLSSetupError(file: path, problem: parseProblem)
    }
}

import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// What to do about a failure the user can fix: added to the one error line by `UDocker.fail`.
/// This is the one place that turns a full disk (ENOSPC) or quota (EDQUOT) into advice, whoever
/// failed: by the errno of the root cause (a `SystemError` kept as `cause`), and, for failures
/// that still arrive as text only (the C engine record, registry and helper messages), by the
/// `strerror` text in the message.
enum ErrorAdvice {
    /// The innermost error of `error`'s cause chain.
    static func rootCause(_ error: any Error) -> any Error {
        (error as? any TypedError)?.rootCause ?? error
    }

    /// Blocks and inodes left on a filesystem.
    struct Room: Equatable { var freeBytes: UInt64; var freeInodes: UInt64; var totalInodes: UInt64 }

    static func room(_ path: String) -> Room? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Room(freeBytes: UInt64(s.f_bavail) * UInt64(s.f_frsize), freeInodes: UInt64(s.f_favail), totalInodes: UInt64(s.f_files))
    }

    static let noSpace = String(cString: strerror(ENOSPC))  // "No space left on device"
    static let quota = String(cString: strerror(EDQUOT))  // "Disk quota exceeded"

    /// `message` with advice appended when it reports no space, no inodes or a full quota: by the
    /// errno of `rootCause` when it is a `SystemError`, else by the text.
    /// `repository` is UDOCKER_DIR; `room` is measured on it (a parameter for the tests).
    static func annotate(_ message: String, rootCause: (any Error)? = nil, repository: String, room: Room?) -> String {
        let lower = message.lowercased()
        let errno = (rootCause as? SystemError)?.errno
        let cleanup =
            "remove what you do not need (udocker rm, udocker rmi, udocker rmi --prune) or set UDOCKER_DIR to a filesystem with room"
        if errno == EDQUOT || (errno == nil && lower.contains(quota.lowercased())) {
            return message + "; your disk quota is used up: see it with 'quota -s' (Lustre: 'lfs quota -u $USER <dir>'), then \(cleanup)"
        }
        guard errno == ENOSPC || (errno == nil && lower.contains(noSpace.lowercased())) else { return message }
        if let room, room.totalInodes > 0, room.freeInodes == 0 {
            return message + "; no inodes (files) left on the filesystem of \(repository): \(cleanup)"
        }
        // Measured after the failed command cleaned up: space left then means inodes ran out.
        if let room, room.totalInodes > 0, room.freeBytes >= 16 << 20 {
            return message + " (\(room.freeBytes >> 20) MiB and \(room.freeInodes) inodes free now on the filesystem of \(repository): "
                + "with space left, it most likely ran out of inodes (files)); \(cleanup)"
        }
        let free = room.map { " (\($0.freeBytes >> 20) MiB free on the filesystem of \(repository))" } ?? ""
        if lower.contains("udocker rmi --prune") { return message + free }
        return message + "\(free); \(cleanup)"
    }
}

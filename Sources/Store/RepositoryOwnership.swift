import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

extension LocalRepository {
    /// Why this repository must not be used: its top directory (symlinks followed) is writable by
    /// others without the sticky bit, or owned by a user other than root and the caller. Whoever
    /// can write there can swap images, containers and tools under the user. A root-owned
    /// repository that the user cannot write (a central, read-only one) is accepted, and so is a
    /// group-writable one whose group is the owner's private group (umask 002 on RHEL-like
    /// systems). The Python udocker checks none of this.
    public var unsafeOwnershipReason: String? { Self.unsafeOwnershipReason(topDirectory) }

    static func unsafeOwnershipReason(_ path: String, euid: uid_t = geteuid()) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let mode = "0" + String(st.st_mode & 0o7777, radix: 8)
        if st.st_uid != 0 && st.st_uid != euid {
            return "repository \(path) is owned by uid \(st.st_uid), neither root nor you: "
                + "its owner could change your images and containers; use a repository of your own (--repo, UDOCKER_DIR)"
        }
        let sticky = st.st_mode & S_ISVTX != 0
        let othersWrite = st.st_mode & S_IWOTH != 0
        let groupWrite = st.st_mode & S_IWGRP != 0 && !Self.isPrivateGroup(st.st_gid, of: st.st_uid)
        if (othersWrite || groupWrite) && !sticky {
            return "repository \(path) is writable by \(othersWrite ? "others" : "its group") (mode \(mode)): "
                + "they could change your images and containers; run 'chmod go-w \(path)'"
        }
        return nil
    }

    /// The repository's owner when it is another user whose repository the user chose to read
    /// (`trusted_repository_owners`: user names or uids, `@group` for a repository its group may
    /// write): nil when the repository is not another user's, or that owner (or its writing
    /// group) is not listed, or others may write it. Such a repository is used read-only.
    public func trustedForeignOwner(_ trusted: [String], euid: uid_t = geteuid()) -> String? {
        var st = stat()
        guard !trusted.isEmpty, stat(topDirectory, &st) == 0, st.st_uid != 0, st.st_uid != euid else { return nil }
        guard st.st_mode & S_IWOTH == 0 || st.st_mode & S_ISVTX != 0 else { return nil }
        let user = getpwuid(st.st_uid).map { String(cString: $0.pointee.pw_name) } ?? String(st.st_uid)
        guard trusted.contains(user) || trusted.contains(String(st.st_uid)) else { return nil }
        if st.st_mode & S_IWGRP != 0 && st.st_mode & S_ISVTX == 0 && !Self.isPrivateGroup(st.st_gid, of: st.st_uid) {
            let group = getgrgid(st.st_gid).map { String(cString: $0.pointee.gr_name) } ?? String(st.st_gid)
            guard trusted.contains("@\(group)") || trusted.contains("@\(st.st_gid)") else { return nil }
            return "\(user) (writable by group \(group))"
        }
        return user
    }

    /// A user-private group: named like the user, and with no other members.
    static func isPrivateGroup(_ gid: gid_t, of uid: uid_t) -> Bool {
        guard let pw = getpwuid(uid), let gr = getgrgid(gid) else { return false }
        guard String(cString: pw.pointee.pw_name) == String(cString: gr.pointee.gr_name) else { return false }
        guard let members = gr.pointee.gr_mem else { return true }
        return members.pointee == nil
    }
}

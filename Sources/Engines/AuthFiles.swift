/// `/etc/passwd` and `/etc/group` as text (udocker `helper/nixauth.py`, done without NSS).
struct PasswdEntry: Sendable, Equatable {
    var name: String
    var uid: UInt32
    var gid: UInt32
    var gecos: String
    var home: String
    var shell: String

    var line: String { "\(name):x:\(uid):\(gid):\(gecos):\(home):\(shell)" }

    init(name: String, uid: UInt32, gid: UInt32, gecos: String, home: String, shell: String) {
        self.name = name; self.uid = uid; self.gid = gid; self.gecos = gecos; self.home = home; self.shell = shell
    }

    init?(line: String) {
        let f = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 7, !f[0].isEmpty, let uid = UInt32(f[2]), let gid = UInt32(f[3]) else { return nil }
        self.init(name: f[0], uid: uid, gid: gid, gecos: f[4], home: f[5], shell: f[6])
    }
}

struct GroupEntry: Sendable, Equatable {
    var name: String
    var gid: UInt32

    init?(line: String) {
        let f = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 3, !f[0].isEmpty, let gid = UInt32(f[2]) else { return nil }
        name = f[0]; self.gid = gid
    }
}

enum AuthFiles {
    static func lines(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init)
    }
    static func users(_ text: String) -> [PasswdEntry] { lines(text).compactMap(PasswdEntry.init(line:)) }
    static func groups(_ text: String) -> [GroupEntry] { lines(text).compactMap(GroupEntry.init(line:)) }

    static func user(named name: String, in text: String) -> PasswdEntry? { users(text).first { $0.name == name } }
    static func user(uid: UInt32, in text: String) -> PasswdEntry? { users(text).first { $0.uid == uid } }
    static func group(gid: UInt32, in text: String) -> GroupEntry? { groups(text).first { $0.gid == gid } }

    /// `text` with `line` appended (newline-terminated) unless an identical line exists.
    static func appending(_ line: String, to text: String) -> String {
        if lines(text).contains(line) { return text }
        var out = text
        if !out.isEmpty && !out.hasSuffix("\n") { out += "\n" }
        return out + line + "\n"
    }
}

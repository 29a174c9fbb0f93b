import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// How `--user` was written.
enum UserSpec: Equatable {
    case name(String)
    case uid(UInt32)
    case uidGid(UInt32, UInt32)

    /// `name`, `uid` or `uid:gid` (udocker `_uid_gid_from_str`: anything else with ":" is invalid).
    static func parse(_ text: String) throws -> UserSpec {
        if text.contains(":") {
            let f = text.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count == 2, f.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
                let u = UInt32(f[0]), let g = UInt32(f[1])
            else {
                throw EngineError.invalid("invalid syntax for user: \(text): must be uid:gid or username")
            }
            return .uidGid(u, g)
        }
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), let u = UInt32(text) { return .uid(u) }
        guard !text.isEmpty, !text.contains(where: { $0 == "/" || $0.isWhitespace || $0 == "\0" }) else {
            throw EngineError.invalid("invalid user name: \(text)")
        }
        return .name(text)
    }
}

extension PlanBuilder {
    /// udocker `_setup_container_user` + `_create_user` for root-capable engines (P, N1).
    mutating func setupUser() throws {
        let specText: String = {
            if let u = options.user, !u.isEmpty { return u }
            if let u = jobUser { return u }
            if let u = meta.user, !u.isEmpty { return u }
            return "root"
        }()
        let spec = try UserSpec.parse(specText)

        // Where users are looked up.
        let passwdVolume = userVolume(onto: "/etc/passwd")
        let groupVolume = userVolume(onto: "/etc/group")
        let hostLookup = options.hostauth || passwdVolume != nil
        let passwdText: String
        if let v = passwdVolume {
            passwdText = (try? String(contentsOfFile: v.host, encoding: .utf8)) ?? ""
        } else if options.hostauth {
            passwdText = (try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? ""
        } else {
            passwdText = (try? rootFS)?.text("/etc/passwd") ?? ""
        }

        var found: PasswdEntry?
        switch spec {
        case .name(let n): found = AuthFiles.user(named: n, in: passwdText)
        case .uid(let u), .uidGid(let u, _): found = AuthFiles.user(uid: u, in: passwdText)
        }

        if let f = found {
            var gid = f.gid
            if case .uidGid(_, let g) = spec { gid = g }
            user = .init(name: f.name, uid: f.uid, gid: gid, home: f.home.isEmpty ? "/" : f.home, gecos: f.gecos, shell: f.shell)
        } else {
            if hostLookup || options.containerauth {
                if case .name = spec { throw EngineError.invalid("user not found: \(specText)") }
                if hostLookup { throw EngineError.invalid("user not found: \(specText)") }
            }
            switch spec {
            case .name(let n) where n == "root":
                user = .init(name: "root", uid: 0, gid: 0, home: "/", gecos: "", shell: "")
            case .name(let n):
                // udocker: a missing named user is created with the host ids.
                user = .init(name: n, uid: host.uid, gid: host.gid, home: "", gecos: "", shell: "")
            case .uid(let u):
                user = .init(name: u == 0 ? "root" : "", uid: u, gid: 0, home: "", gecos: "", shell: "")
            case .uidGid(let u, let g):
                user = .init(name: u == 0 ? "root" : "", uid: u, gid: g, home: "", gecos: "", shell: "")
            }
            if jobUser != nil {  // a rank of an MPI job: quietly the host's name, cwd / as for root
                user.name = JobEnvironment.isPlainName(host.name) ? host.name : ""
                user.home = "/"
            } else if !options.containerauth && !(user.isRoot && user.name == "root") {
                warnings.append(.userWillBeCreated)
            }
        }
        if user.name.isEmpty { user.name = "udoc" + String(String(user.uid).prefix(4)) }
        if user.home.isEmpty { user.home = user.name == "root" ? "/" : "/home/" + user.name }
        if user.shell.isEmpty { user.shell = "/bin/sh" }
        if user.gecos.isEmpty && found == nil { user.gecos = "*UDOCKER*" }
        if options.bindhome, let h = host.home { user.home = PathName.normalize(h) }

        // Auth files bound into the container.
        if passwdVolume != nil || groupVolume != nil || options.containerauth { return }
        if options.hostauth {
            let p = try temporaryCopy(of: AtomicFile.read("/etc/passwd") ?? [], kind: "passwd")
            let g = try temporaryCopy(of: AtomicFile.read("/etc/group") ?? [], kind: "group")
            authMounts = [VolumeSpec(spec: p, host: p, container: "/etc/passwd"), VolumeSpec(spec: g, host: g, container: "/etc/group")]
            return
        }
        var groupText = (try? rootFS)?.text("/etc/group") ?? ""
        let newPasswd = AuthFiles.appending(
            PasswdEntry(
                name: user.name, uid: user.uid, gid: user.gid, gecos: user.gecos,
                home: user.home, shell: user.shell
            ).line, to: passwdText)
        if AuthFiles.group(gid: user.gid, in: groupText) == nil {
            let hostGroups = (try? String(contentsOfFile: "/etc/group", encoding: .utf8)) ?? ""
            let name = AuthFiles.group(gid: user.gid, in: hostGroups)?.name ?? user.name
            groupText = AuthFiles.appending("\(name):x:\(user.gid):", to: groupText)
        }
        for g in host.groups where AuthFiles.group(gid: g, in: groupText) == nil {
            groupText = AuthFiles.appending("G\(g):x:\(g):", to: groupText)
        }
        let p = try temporaryCopy(of: Array(newPasswd.utf8), kind: "passwd")
        let g = try temporaryCopy(of: Array(groupText.utf8), kind: "group")
        authMounts = [VolumeSpec(spec: p, host: p, container: "/etc/passwd"), VolumeSpec(spec: g, host: g, container: "/etc/group")]
    }

    /// Writes `data` to a new 0600 file in tmpDir (udocker: umask 077).
    mutating func temporaryCopy(of data: [UInt8], kind: String) throws -> String {
        var template = Array("\(env.tmpDir)/udocker-\(container.id.prefix(8))-XXXXXX-\(kind)".utf8CString)
        let suffix = Int32(kind.utf8.count + 1)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, suffix) }
        guard fd >= 0 else {
            throw EngineError(.io, "cannot create a temporary \(kind) file in \(env.tmpDir): \(String(cString: strerror(errno)))")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let path = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        temporaryFiles.append(path)
        defer { close(fd) }
        fchmod(fd, 0o600)
        var ok = true
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; ok = false; return }
                off += n
            }
        }
        guard ok else { throw EngineError(.io, "cannot write \(path): \(String(cString: strerror(errno)))") }
        return path
    }
}

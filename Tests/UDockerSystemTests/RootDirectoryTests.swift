import Foundation
import Testing
import UDockerSystem
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct RootDirectoryTests {
    final class Env {
        let tmp: TemporaryDirectory
        let root: String
        let outside: String
        init() throws {
            tmp = try TemporaryDirectory(prefix: "rootdir-test")
            root = tmp.sub("root")
            outside = tmp.sub("outside")
            let fm = FileManager.default
            try fm.createDirectory(atPath: root + "/usr/lib", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: root + "/b", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: outside, withIntermediateDirectories: true)
            try "outside".write(toFile: outside + "/secret", atomically: false, encoding: .utf8)
            try "inside".write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
            try "#!/bin/sh\n".write(toFile: root + "/usr/lib/tool", atomically: false, encoding: .utf8)
            chmod(root + "/usr/lib/tool", 0o750)
            try fm.createSymbolicLink(atPath: root + "/lib", withDestinationPath: "usr/lib")
            try fm.createSymbolicLink(atPath: root + "/abs", withDestinationPath: "/b")
            try fm.createSymbolicLink(atPath: root + "/up", withDestinationPath: "../../../../b")
            try fm.createSymbolicLink(atPath: root + "/loop1", withDestinationPath: "loop2")
            try fm.createSymbolicLink(atPath: root + "/loop2", withDestinationPath: "/loop1")
            try fm.createSymbolicLink(atPath: root + "/esc", withDestinationPath: outside)
            try fm.createSymbolicLink(atPath: root + "/relesc", withDestinationPath: "../outside")
            try fm.createSymbolicLink(atPath: root + "/passwdlink", withDestinationPath: "/etc/passwd")
            try fm.createSymbolicLink(atPath: root + "/dangling", withDestinationPath: "/var/run/mount")
        }
        func outsideIntact() -> Bool {
            (try? FileManager.default.contentsOfDirectory(atPath: outside)) == ["secret"]
                && (try? String(contentsOfFile: outside + "/secret", encoding: .utf8)) == "outside"
        }
    }

    @Test func hostPathResolvesSymlinksInsideRoot() throws {
        let e = try Env()
        let r = try RootDirectory(path: e.root + "/")
        #expect(r.path == e.root)
        #expect(r.hostPath("/") == e.root)
        #expect(r.hostPath("/abs") == e.root + "/b")
        #expect(r.hostPath("up") == e.root + "/b")
        #expect(r.hostPath("/lib/tool") == e.root + "/usr/lib/tool")
        #expect(r.hostPath("/lib") == e.root + "/usr/lib")
        #expect(r.hostPath("/lib", followFinal: false) == e.root + "/lib")
        #expect(r.hostPath("/passwdlink") == e.root + "/etc/passwd")
        #expect(r.hostPath("/../../../etc/passwd") == e.root + "/etc/passwd")
        #expect(r.hostPath("/usr/../../b/./") == e.root + "/b")
        #expect(r.hostPath("/loop1") == nil)
        #expect(r.hostPath("/missing") == nil)
        #expect(r.hostPath("/etc/passwd/x") == nil)
        #expect(r.hostPath("/esc/secret") == nil)  // the outside file is not reachable
        #expect(r.hostPath("/relesc/secret") == nil)
        #expect(r.hostPath("/esc", followFinal: false) == e.root + "/esc")
        #expect(r.hostPath("/dangling") == nil)
    }

    @Test func predicatesAndRead() throws {
        let e = try Env()
        let r = try RootDirectory(path: e.root)
        #expect(r.isDirectory("/lib"))
        #expect(r.isDirectory("/abs"))
        #expect(!r.isDirectory("/esc"))
        #expect(!r.isDirectory("/etc/passwd"))
        #expect(r.isExecutableFile("/lib/tool"))
        #expect(!r.isExecutableFile("/etc/passwd"))
        #expect(!r.isExecutableFile("/usr/lib"))
        #expect(try r.readFile("/passwdlink") == Array("inside".utf8))
        #expect(throws: SystemError.self) { try r.readFile("/esc/secret") }
        #expect(throws: SystemError.self) { try r.readFile("/etc") }
        // An in-root copy at the outside path is what gets read.
        try FileManager.default.createDirectory(atPath: e.root + e.outside, withIntermediateDirectories: true)
        try "decoy".write(toFile: e.root + e.outside + "/secret", atomically: false, encoding: .utf8)
        #expect(try r.readFile("/esc/secret") == Array("decoy".utf8))
    }

    @Test func makeDirectoriesThroughOutsideSymlinkStaysInRoot() throws {
        let e = try Env()
        let r = try RootDirectory(path: e.root)
        let p1 = try r.makeDirectories("/esc/x/y", mode: 0o700)
        #expect(p1 == e.root + e.outside + "/x/y")
        let p2 = try r.makeDirectories("relesc/z")
        #expect(p2 == e.root + "/outside/z")
        let p3 = try r.makeDirectories("/dangling/sub")
        #expect(p3 == e.root + "/var/run/mount/sub")
        let p4 = try r.makeDirectories("/lib/new", mode: 0o751)
        #expect(p4 == e.root + "/usr/lib/new")
        var st = stat()
        #expect(lstat(p1, &st) == 0 && st.st_mode & 0o7777 == 0o700)
        #expect(lstat(p4, &st) == 0 && st.st_mode & 0o7777 == 0o751)
        #expect(e.outsideIntact())
        #expect(throws: SystemError.self) { try r.makeDirectories("/loop1/x") }
    }

    @Test func makeEmptyFileNeverFollowsOut() throws {
        let e = try Env()
        let r = try RootDirectory(path: e.root)
        let p = try r.makeEmptyFile("/etc/resolv.conf", mode: 0o640)
        #expect(p == e.root + "/etc/resolv.conf")
        var st = stat()
        #expect(lstat(p, &st) == 0 && st.st_mode & 0o7777 == 0o640 && st.st_size == 0)
        // Existing entries are left alone.
        #expect(try r.makeEmptyFile("/etc/passwd") == e.root + "/etc/passwd")
        #expect(try String(contentsOfFile: e.root + "/etc/passwd", encoding: .utf8) == "inside")
        // A symlink pointing out is resolved inside the root.
        try FileManager.default.createSymbolicLink(atPath: e.root + "/etc/hosts", withDestinationPath: e.outside + "/secret")
        let h = try r.makeEmptyFile("/etc/hosts")
        #expect(h == e.root + e.outside + "/secret")
        #expect(lstat(h, &st) == 0 && st.st_mode & 0o170000 == 0o100000)
        #expect(try r.makeEmptyFile("/esc/newfile") == e.root + e.outside + "/newfile")
        #expect(try r.makeEmptyFile("/a/b/c/mnt") == e.root + "/a/b/c/mnt")
        #expect(e.outsideIntact())
    }

    @Test func nonUTF8AndParentTraversalInResolver() throws {
        let e = try Env()
        let r = try RootDirectory(path: e.root)
        let res = try r.makeResolver()
        defer { res.close() }
        let name: [UInt8] = [0x61, 0xFF, 0xFE]
        guard case .directory(_, let p)? = try res.resolve([name, [0x2E, 0x2E], [0x2E, 0x2E], name], create: true) else {
            Issue.record("expected a directory"); return
        }
        #expect(p == name)
        var st = stat()
        #expect(withCName(Array(e.root.utf8) + [0x2F] + name) { lstat($0, &st) } == 0)
        #expect(e.outsideIntact())
    }
}

import Foundation
import Testing
import UDockerSystem
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `RootDirectory.resolve(_:volumes:)` and `makeMountpoint`: the launch side's lookups, on hostile roots.
@Suite struct RootLookupTests {
    final class Env {
        let tmp: TemporaryDirectory
        let root: String, outside: String, volume: String
        let fs: RootDirectory
        init() throws {
            tmp = try TemporaryDirectory(prefix: "rootlookup-test")
            root = tmp.sub("root"); outside = tmp.sub("outside"); volume = tmp.sub("volume")
            let fm = FileManager.default
            for d in [root + "/etc", root + "/bin", root + "/usr/lib", outside, volume + "/sub"] {
                try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
            }
            try "outside".write(toFile: outside + "/secret", atomically: false, encoding: .utf8)
            try "root:x:0:0".write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
            try "#!/bin/sh\n".write(toFile: root + "/bin/tool", atomically: false, encoding: .utf8)
            try "data".write(toFile: volume + "/sub/file", atomically: false, encoding: .utf8)
            try fm.createSymbolicLink(atPath: root + "/etc/resolv.conf", withDestinationPath: "/home/x/evil")
            try fm.createSymbolicLink(atPath: root + "/up", withDestinationPath: "../../../../etc")
            try fm.createSymbolicLink(atPath: root + "/esc", withDestinationPath: outside)
            try fm.createSymbolicLink(atPath: root + "/relesc", withDestinationPath: "../outside")
            try fm.createSymbolicLink(atPath: root + "/loop", withDestinationPath: "/loop")
            try fm.createSymbolicLink(atPath: root + "/data", withDestinationPath: "/mnt/data")
            try fm.createSymbolicLink(atPath: root + "/mid", withDestinationPath: "/usr")
            fs = try RootDirectory(path: root + "/")
        }
        func outsideIntact() -> Bool {
            (try? FileManager.default.contentsOfDirectory(atPath: outside)) == ["secret"]
                && (try? String(contentsOfFile: outside + "/secret", encoding: .utf8)) == "outside"
        }
    }

    @Test func symlinksResolveInsideTheRoot() throws {
        let e = try Env()
        let a = try e.fs.resolve("/etc/resolv.conf")
        #expect(
            a.path == "/home/x/evil" && a.hostPath == e.root + "/home/x/evil" && !a.exists && !a.isDirectory
                && !a.isRegularFile && a.mode == 0 && !a.inVolume)
        let b = try e.fs.resolve("/up/passwd")
        #expect(b.path == "/etc/passwd" && b.exists && b.isRegularFile && b.hostPath == e.root + "/etc/passwd")
        #expect(try e.fs.resolve("/etc/resolv.conf", followFinal: false).path == "/etc/resolv.conf")
        #expect(try e.fs.resolve("/../../etc/./passwd").path == "/etc/passwd")
        #expect(try e.fs.resolve("etc").isDirectory)
        let r = try e.fs.resolve("/")
        #expect(r.path == "/" && r.hostPath == e.root && r.isDirectory)
        #expect(try e.fs.resolve("/mid/lib").path == "/usr/lib")
    }

    @Test func symlinksToTheHostStayInTheRoot() throws {
        let e = try Env()
        let a = try e.fs.resolve("/esc/secret")
        #expect(a.path == e.outside + "/secret" && !a.exists && a.hostPath == e.root + e.outside + "/secret")
        let b = try e.fs.resolve("/relesc/secret")
        #expect(b.path == "/outside/secret" && !b.exists && b.hostPath == e.root + "/outside/secret")
        #expect(e.fs.contents("/esc/secret") == nil && e.fs.contents("/relesc/secret") == nil)
        #expect(e.fs.contents("/up/passwd") == Data("root:x:0:0".utf8))
    }

    @Test func loopsAndFilesInThePathAreErrors() throws {
        let e = try Env()
        #expect(throws: RootDirectory.ResolveError.loop) { try e.fs.resolve("/loop") }
        #expect(throws: RootDirectory.ResolveError.loop) { try e.fs.resolve("/loop/x") }
        #expect(throws: RootDirectory.ResolveError.notDirectory("/bin/tool")) { try e.fs.resolve("/bin/tool/x") }
        #expect(try e.fs.resolve("/loop", followFinal: false).path == "/loop")
    }

    @Test func volumesContinueInTheirHostDirectory() throws {
        let e = try Env()
        let v = [RootDirectory.Volume(host: e.volume, container: "/mnt/data/")]
        let a = try e.fs.resolve("/mnt/data/sub/file", volumes: v)
        #expect(
            a.path == "/mnt/data/sub/file" && a.hostPath == e.volume + "/sub/file" && a.exists && !a.isDirectory
                && a.isRegularFile && a.mode & 0o170000 == 0o100000 && a.inVolume)
        // Through an in-root symlink to the volume's mountpoint (missing in ROOT) and `..`.
        let b = try e.fs.resolve("/data/sub/../sub/file", volumes: v)
        #expect(b.inVolume && b.exists && b.hostPath == e.volume + "/sub/../sub/file" && b.path == "/mnt/data/sub/file")
        // Without the volume, the same path is missing inside ROOT.
        let c = try e.fs.resolve("/data/sub/file")
        #expect(!c.exists && !c.inVolume && c.hostPath == e.root + "/mnt/data/sub/file")
        // The last matching volume wins, as the last mount would.
        let w = v + [RootDirectory.Volume(host: e.outside, container: "/mnt/data")]
        #expect(try e.fs.resolve("/mnt/data/secret", volumes: w).hostPath == e.outside + "/secret")
        // A volume at /etc hides ROOT's /etc.
        let h = try e.fs.resolve("/etc/passwd", volumes: [RootDirectory.Volume(host: e.volume, container: "/etc")])
        #expect(h.inVolume && !h.exists)
    }

    @Test func mountpointsAreCreatedWithoutFollowingSymlinks() throws {
        let e = try Env()
        let fm = FileManager.default
        try e.fs.makeMountpoint("/home/x/evil", directory: false)
        #expect(fm.fileExists(atPath: e.root + "/home/x/evil"))
        try e.fs.makeMountpoint("/srv/a/b", directory: true)
        var isDir: ObjCBool = false
        #expect(fm.fileExists(atPath: e.root + "/srv/a/b", isDirectory: &isDir) && isDir.boolValue)
        try e.fs.makeMountpoint("/srv/a/b", directory: true)  // existing, same type: fine
        try e.fs.makeMountpoint("/etc/passwd", directory: false)
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/etc/passwd", directory: true) }
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/srv/a/b", directory: false) }
        // A symlink anywhere on the way, or as the final entry, is refused; nothing is written outside.
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/esc/new", directory: false) }
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/esc/dir/new", directory: true) }
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/relesc/new", directory: true) }
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/mid/lib/new", directory: false) }
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/etc/resolv.conf", directory: false) }
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/esc", directory: true) }
        #expect(throws: SystemError.self) { try e.fs.makeMountpoint("/srv/../../outside/new", directory: true) }
        #expect(!fm.fileExists(atPath: e.root + "/usr/lib/new") && !fm.fileExists(atPath: e.root + "/outside"))
        #expect(e.outsideIntact())
    }
}

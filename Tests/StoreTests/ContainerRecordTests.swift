import ContainerModel
import Foundation
import Store
import UDockerSystem
import TestSupport
import Testing

/// A container's recorded state is typed and validated when read: the directory may have been
/// written by someone else (a shared repository, a clone).
@Suite struct ContainerRecordTests {
    func repository(_ tmp: TemporaryDirectory) throws -> (LocalRepository, String) {
        let repo = LocalRepository(topDirectory: tmp.sub("repo"))
        try repo.create()
        let id = LocalRepository.newContainerID()
        try FileInfo.makeDirectories("\(repo.containerDirectory(id))/ROOT", mode: 0o755)
        return (repo, id)
    }

    @Test func modeIsWrittenOnceAndReadTyped() throws {
        let tmp = try TemporaryDirectory()
        let (repo, id) = try repository(tmp)
        #expect(try repo.executionMode(id) == nil)
        #expect(repo.containerRecord(id)?.mode == nil)
        try repo.setExecutionMode(id, .F3)
        #expect(try repo.executionMode(id) == .F3)
        #expect(AtomicFile.readString("\(repo.containerDirectory(id))/execmode") == "F3")
        // root.path records where ROOT was when the mode was set (a Fakechroot conversion's prefix).
        #expect(
            AtomicFile.readString("\(repo.containerDirectory(id))/root.path")
                == realpath(repo.containerRoot(id), nil).map { p in
                    defer { free(p) }; return String(cString: p)
                })
        let record = try #require(repo.containerRecord(id))
        #expect(record.mode == .F3 && record.invalidMode == nil && record.rootState == "W" && record.image.isEmpty)
        #expect(repo.listContainers().map(\.id) == [id])
    }

    @Test(arguments: ["p2\n", " R1 ", "s1"])
    func recordedModesParseAsUdockerWritesThem(_ text: String) throws {
        let tmp = try TemporaryDirectory()
        let (repo, id) = try repository(tmp)
        try AtomicFile.write(text, to: "\(repo.containerDirectory(id))/execmode")
        #expect(try repo.executionMode(id) == ExecutionMode(parsing: text))
        #expect(try repo.executionMode(id) != nil)
    }

    @Test(arguments: ["X9", "../../etc", "P1P2", String(repeating: "Z", count: 300)])
    func anInvalidRecordedModeIsAnErrorNotAMode(_ text: String) throws {
        let tmp = try TemporaryDirectory()
        let (repo, id) = try repository(tmp)
        try AtomicFile.write(text, to: "\(repo.containerDirectory(id))/execmode")
        let record = try #require(repo.containerRecord(id))
        #expect(record.mode == nil)
        #expect(record.invalidMode == String(text.prefix(16)))
        let error = #expect(throws: StoreError.self) { try repo.executionMode(id) }
        #expect(error?.description.contains("invalid execution mode") == true)
        #expect(error?.description.contains("\n") == false)
    }
}

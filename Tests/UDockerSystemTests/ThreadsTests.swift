import Foundation
import Synchronization
import Testing
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ThreadsTests {
    @Test(arguments: [1, 2, 3, 8])
    func forEachRunsEveryIndexOnce(width: Int) {
        let seen = Mutex([Int](repeating: 0, count: 50))
        Threads.forEach(50, width: width) { i in
            seen.withLock { $0[i] += 1 }
            return true
        }
        #expect(seen.withLock { $0 } == [Int](repeating: 1, count: 50))
    }

    @Test(arguments: [1, 3])
    func forEachStartsNoIndexAfterAFailure(width: Int) {
        let started = Mutex(Set<Int>())
        Threads.forEach(100, width: width) { i in
            started.withLock { _ = $0.insert(i) }
            return i != 5
        }
        let s = started.withLock { $0 }
        #expect(s.isSuperset(of: Set(0...5)))
        // At most the calls already running on the other threads started after index 5.
        #expect(s.count <= 6 + (width - 1))
    }

    @Test func forEachOnNothingCallsNothing() {
        let calls = Mutex(0)
        Threads.forEach(0, width: 4) { _ in
            calls.withLock { $0 += 1 }; return true
        }
        #expect(calls.withLock { $0 } == 0)
    }

    /// A worker that blocks SIGPIPE gets EPIPE from a pipe whose reader is gone, and the process
    /// (whose SIGPIPE disposition is left at its default, which would end it) goes on.
    @Test func aWorkerBlockingSIGPIPEGetsEPIPE() throws {
        let previous = signal(SIGPIPE, SIG_DFL)
        defer { signal(SIGPIPE, previous) }
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        close(fds[0])
        final class Result: @unchecked Sendable { var rc = 0; var err: Int32 = 0 }
        let result = Result()
        let writeFD = fds[1]
        let t = try #require(
            WorkerThread.start(blockingSIGPIPE: true) {
                result.rc = write(writeFD, "x", 1)
                result.err = errno
            })
        t.join()
        close(writeFD)
        #expect(result.rc == -1 && result.err == EPIPE)
    }

    /// A bounded hand-over: the producer waits while the one slot is full.
    @Test func conditionLockHandsItemsOverInOrder() throws {
        final class Slot: @unchecked Sendable {
            let lock = ConditionLock(conditions: 2)
            var item: Int?
            var received: [Int] = []
            var producerWaited = false
        }
        let slot = Slot()
        let notFull = ConditionLock.Condition(0), notEmpty = ConditionLock.Condition(1)
        let producer = try #require(
            WorkerThread.start {
                for i in 0..<200 {
                    slot.lock.withLock {
                        if slot.lock.wait(on: notFull, while: { slot.item != nil }) { slot.producerWaited = true }
                        slot.item = i
                        slot.lock.signal(notEmpty)
                    }
                }
            })
        for _ in 0..<200 {
            slot.lock.withLock {
                slot.lock.wait(on: notEmpty) { slot.item == nil }
                slot.received.append(slot.item!)
                slot.item = nil
                slot.lock.signal(notFull)
            }
        }
        producer.join()
        #expect(slot.received == Array(0..<200))
    }
}

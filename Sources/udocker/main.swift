import Commands
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// The exit status, written by the command's task and read once it has signalled.
final class ExitStatus: @unchecked Sendable { var value: Int32 = 0 }

/// Runs the command line on this thread. `Task.immediate` runs the command synchronously up to its
/// first real suspension, so a command that never suspends (version, run, ps, inspect, …) starts no
/// thread at all; one that does (a pull's network I/O) goes on on the concurrency runtime's threads
/// while this thread waits. (A top-level `await` would start the runtime's threads for every
/// command: four before `udocker version` printed a line.)
nonisolated func runCommandLine() -> Int32 {
    let status = ExitStatus()
    let done = DispatchSemaphore(value: 0)
    let arguments = Array(CommandLine.arguments.dropFirst())
    Task.immediate {
        status.value = await UDocker.main(arguments)
        done.signal()
    }
    done.wait()
    return status.value
}

/// The signals udocker forwards to a container or acts on (start-up deferral) are received even
/// when the parent started us with them blocked (test runners, some batch systems): the command
/// runs on this one thread, so a blocked signal would wait until udocker exits and a `kill` would
/// never reach the container.
func receiveForwardedSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&set, s) }
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

if let status = UDocker.immediateStatus(argc: CommandLine.argc, argv: CommandLine.unsafeArgv) { exit(status) }
receiveForwardedSignals()
exit(runCommandLine())

// oomguard-node-pause: the sandbox ("pause") process of the node lab's pods,
// in the lab's own sandbox image (tests/node/guest/cri.py builds it: there is
// no registry). Like the upstream one it holds the pod's namespaces, reaps
// orphans (it is PID 1 of the pod) and exits on SIGINT/SIGTERM. Static.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {
void on_term(int) { _exit(0); }
void on_child(int) {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
}
}  // namespace

int main() {
    struct sigaction sa {};
    sa.sa_handler = on_term;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, nullptr);
    for (;;) pause();
}

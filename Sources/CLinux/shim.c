#include "CLinux.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/random.h>

const uint32_t FERRY_EPOLLIN = EPOLLIN, FERRY_EPOLLOUT = EPOLLOUT, FERRY_EPOLLERR = EPOLLERR,
    FERRY_EPOLLHUP = EPOLLHUP, FERRY_EPOLLRDHUP = EPOLLRDHUP, FERRY_EPOLLET = EPOLLET;
const unsigned int FERRY_SPLICE_F_MOVE = SPLICE_F_MOVE, FERRY_SPLICE_F_NONBLOCK = SPLICE_F_NONBLOCK,
    FERRY_SPLICE_F_MORE = SPLICE_F_MORE;
const int FERRY_SOCK_NONBLOCK = SOCK_NONBLOCK, FERRY_SOCK_CLOEXEC = SOCK_CLOEXEC, FERRY_SOCK_STREAM = SOCK_STREAM;

int ferry_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data = {.u64 = data}};
    return epoll_ctl(epfd, op, fd, &ev);
}

int ferry_epoll_wait(int epfd, struct ferry_epoll_event *out, int max, int timeout_ms) {
    struct epoll_event evs[512];
    if (max > 512) max = 512;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) { out[i].events = evs[i].events; out[i].data = evs[i].data.u64; }
    return n;
}

ssize_t ferry_splice(int fd_in, int fd_out, size_t len, unsigned int flags) {
    return splice(fd_in, NULL, fd_out, NULL, len, flags);
}
int ferry_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int ferry_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) { return accept4(fd, addr, len, flags); }
int ferry_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
int ferry_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
ssize_t ferry_getrandom(void *buffer, size_t length) { return getrandom(buffer, length, 0); }
int ferry_unacked_bytes(int fd, int *bytes) { return ioctl(fd, TIOCOUTQ, bytes); }  // == SIOCOUTQ
int ferry_queued_bytes(int fd, int *bytes) { return ioctl(fd, FIONREAD, bytes); }    // == SIOCINQ

static void fill(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int i = 0; i < count; i++) sigaddset(set, signals[i]);
}
int ferry_signalfd(const int *signals, int count) {
    sigset_t set; fill(&set, signals, count);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}
int ferry_block_signals(const int *signals, int count) {
    sigset_t set; fill(&set, signals, count);
    return sigprocmask(SIG_BLOCK, &set, NULL);
}
int ferry_errno(void) { return errno; }

// The C shim: only what Swift's Glibc module does not give us. Each wrapper says why.
#ifndef FERRY_CLINUX_H
#define FERRY_CLINUX_H
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <signal.h>

// epoll_event is __attribute__((packed)) on x86_64, which Swift cannot lay out; this
// unpacked twin is filled by ferry_epoll_wait.
struct ferry_epoll_event {
    uint32_t events;
    uint64_t data;
};

int ferry_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int ferry_epoll_wait(int epfd, struct ferry_epoll_event *out, int max, int timeout_ms);

// splice/pipe2/accept4 and F_SETPIPE_SZ need _GNU_SOURCE, which Glibc's module map lacks.
ssize_t ferry_splice(int fd_in, int fd_out, size_t len, unsigned int flags);
int ferry_pipe2(int fds[2], int flags);
int ferry_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int ferry_set_pipe_size(int fd, int size);
int ferry_fcntl_int(int fd, int cmd, int arg);

// getrandom(2) is not in Swift's Glibc module (sys/random.h is not part of it).
ssize_t ferry_getrandom(void *buffer, size_t length);

// ioctl is variadic, which Swift cannot call: SIOCOUTQ, the bytes a socket has yet to see
// acknowledged, stored in *bytes.
int ferry_unacked_bytes(int fd, int *bytes);
// FIONREAD (SIOCINQ): bytes received and not read yet, stored in *bytes. Unlike a peeking
// recv, it leaves a pending socket error where it is.
int ferry_queued_bytes(int fd, int *bytes);

// signalfd and sigset manipulation macros are not imported (sigset_t ops are macros in places).
int ferry_signalfd(const int *signals, int count);
int ferry_block_signals(const int *signals, int count);

// errno is a macro over a TLS function; reading it through a function keeps that in one place.
int ferry_errno(void);

// Constants Swift imports oddly (enum-typed or macro expressions).
extern const uint32_t FERRY_EPOLLIN, FERRY_EPOLLOUT, FERRY_EPOLLERR, FERRY_EPOLLHUP,
    FERRY_EPOLLRDHUP, FERRY_EPOLLET;
extern const unsigned int FERRY_SPLICE_F_MOVE, FERRY_SPLICE_F_NONBLOCK, FERRY_SPLICE_F_MORE;
extern const int FERRY_SOCK_NONBLOCK, FERRY_SOCK_CLOEXEC, FERRY_SOCK_STREAM;
#endif

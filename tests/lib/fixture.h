/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The data-plane test fixture: the test process moves into its own network and mount
 * namespaces (so nothing it creates can outlive it or touch the host), builds two veth
 * pairs with addresses and permanent neighbours, mounts a private bpffs under /run for the
 * pins, and loads the real program with bgs_init(). Packets are run through the entry
 * program with BPF_PROG_TEST_RUN, ingress on the client-facing veth.
 *
 *	clients  cl0 <-> lb0   10.99.0.1/16     fd00:99::1/64     (net 0)
 *	backends be0 <-> lb1   10.99.1.1/24     fd00:99:1::1/64   (net 1)
 *
 * Backend n of net k (2 <= n <= 254): 10.99.k.n or fd00:99:k::be:n. Those with n < 200 have a
 * permanent neighbour with MAC 02:be:<4|6>:0k:00:n; n >= 200 have none (unresolved next
 * hop). Clients are 10.99.16.1 .. 10.99.239.250 and fd00:99::c:x:y; VIPs 10.99.250.n and
 * fd00:99:250::n.
 *
 * Teardown (pins, bpffs, the /run directory) runs at exit and on SIGINT/SIGTERM/SIGHUP/
 * SIGALRM; the namespaces, veths and neighbours vanish with the process whatever happens.
 */
#ifndef BGS_FIXTURE_H
#define BGS_FIXTURE_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>

#include "libbgswitch.h"
#include "bgs_test.h" /* bgs_map_fd */
#include "pkt.h"
#include "test.h"

#define FX_NET_CLIENT 0
#define FX_NET_BACKEND 1
/* Backends with n >= this have no neighbour entry. */
#define FX_UNRESOLVED_N 200

/* What the fixture knows about a backend it added (independently of the library). */
struct fx_be {
	__u32 id;
	__u32 svc_id;
	__u32 color;
	__u8 family;
	int net, n;
	__u16 port;	   /* host order, as the backend receives */
	struct bgs_ip ip;
	__u8 mac[6];	   /* neighbour MAC (zero when unresolved) */
	__u32 ifindex;	   /* egress interface (lb0 / lb1) */
	__u8 smac[6];	   /* that interface's MAC */
	bool resolved;
	bool in_use;
};

struct fx_svc {
	__u32 id;
	__u8 family, proto, mode;
	struct bgs_ip vip;
	__u16 port, preview_port; /* host order */
};

struct fx {
	struct bgs *h;
	char mnt[64];	   /* the private bpffs */
	char pin_dir[96];
	__u32 if_lb0, if_lb1, if_cl0, if_be0;
	__u8 mac_lb0[6], mac_lb1[6], mac_cl0[6], mac_be0[6];
	int entry_fd;
	int ct_fd, maglev_fd, backends_fd, flip_fd;
	struct bgs_meta meta;
	struct fx_be *be;  /* indexed by backend id, meta.max_backends entries */
};

extern struct fx fx;

/*
 * main() of a data-plane test binary: skips everything (exit 249) when not root or when
 * the fixture cannot be built for a reason outside bgswitch (no veth, no bpffs), fails when
 * bgswitch itself cannot be set up, else runs the tests. watchdog_s bounds the whole run.
 */
int fx_main(int argc, char **argv, const struct bgs_sizes *sizes, const struct test_case *tests,
	    int n, unsigned int watchdog_s);

/* Run a shell command (inside the test namespaces); 0 on exit status 0. */
int fx_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Addresses of the topology. */
void fx_be_ip(__u8 family, int net, int n, struct bgs_ip *ip);
void fx_be_mac(__u8 family, int net, int n, __u8 mac[6]);
void fx_client_ip(__u8 family, __u32 idx, __u32 addr[4]);
void fx_vip(__u8 family, int n, struct bgs_ip *ip);

/* Service with both pools empty, blue live. */
bool fx_svc_add(struct fx_svc *s, const char *name, __u8 family, int vip_n, __u16 port,
		__u8 proto, __u8 mode, __u16 preview_port);
bool fx_svc_del(struct fx_svc *s);
/* Add backend (net, n) to a pool; checks the library's record (address, next hop, MACs,
 * ifindex) against the topology. port 0: the VIP's port. */
bool fx_be_add(const struct fx_svc *s, __u32 color, int net, int n, __u16 port, __u32 weight,
	       __u32 *id);
bool fx_be_del(__u32 id);

/* Current flip state of a service (fails the test on error). */
bool fx_flip_get(const struct fx_svc *s, struct bgs_flip *f);
/* Backend the service's current table of color gives key (0: empty). */
__u32 fx_table_pick(const struct fx_svc *s, __u32 color, const struct bgs_flow_key *key);
/* Same, from a flip word already read (for consistent multi-pick checks). */
__u32 fx_table_pick_word(const struct fx_svc *s, __u64 word, __u32 color,
			 const struct bgs_flow_key *key);

/* A client packet to a service: client index, source port, TCP flags (ignored for UDP);
 * Ethernet cl0 -> lb0, TTL 64, 24 bytes of payload. */
void fx_client_pkt(struct pkt *p, const struct fx_svc *s, __u32 client, __u16 sport,
		   __u8 tcp_flags);

/* One test run of the entry program: ingress ifindex, frame in, frame out. */
struct fx_out {
	__u32 retval;
	__u32 len;
	__u8 data[PKT_MAX];
};
int fx_run(const __u8 *in, __u32 len, __u32 ifindex, struct fx_out *out);
/* Build and run p arriving on lb0. */
int fx_run_pkt(const struct pkt *p, __u32 ifindex, struct fx_out *out);

/* The frame the program must emit for client packet p sent to backend id (nat: address,
 * port and TTL rewritten; dsr: MACs only), and its verdict. */
void fx_expected_fwd(const struct fx_svc *s, const struct pkt *p, __u32 be_id, struct pkt *exp,
		     __u32 *verdict);
/* Run client packet p (ingress lb0); expect it forwarded to backend be_id, byte for byte. */
bool fx_expect_fwd(const struct fx_svc *s, const struct pkt *p, __u32 be_id);
/* Run client packet p; find which of the service's backends it went to from the output,
 * check every byte against what that backend's forward must look like; 0 on failure. */
__u32 fx_send(const struct fx_svc *s, const struct pkt *p);
/* Run p (arriving on ifindex); expect verdict and an untouched frame. */
bool fx_expect_untouched(const struct pkt *p, __u32 ifindex, __u32 verdict, const char *what);

/* Conntrack entry of a client packet's flow; false if none. */
bool fx_ct_get(const struct pkt *p, struct bgs_flow *f);
int fx_ct_delete(const struct pkt *p);
/* Number of conntrack entries (walks the map). */
long fx_ct_count(void);

/* Verdict counters. */
void fx_reasons(struct bgs_reason_counter c[BGS_R_MAX]);
/* Exactly `reason` went up by packets/bytes since before, every other reason unchanged. */
bool fx_expect_reason(const struct bgs_reason_counter *before, enum bgs_reason reason,
		      __u64 packets, __u64 bytes);

const char *fx_xdp_str(__u32 verdict);



/* ---- Flows ---- */

#define FX_ANY_GEN (~0u)

/* The conntrack entry of p's flow says backend be_id, color, generation gen (FX_ANY_GEN:
 * any), the backend's current incarnation, and the reverse path of a packet from cl0. */
bool fx_flow_check_ct(const struct fx_svc *s, const struct pkt *p, __u32 be_id, __u32 color,
		      __u32 gen);
/* Start flow (client, sport) with a SYN (TCP) or a datagram (UDP): it must go to the
 * backend the current table of `color` gives it (byte for byte) and be tracked so. */
bool fx_flow_new(const struct fx_svc *s, __u32 client, __u16 sport, __u32 color, __u32 *be_id);
/* Next packet of a known flow (TCP ACK / datagram): it must go to be_id. */
bool fx_flow_next(const struct fx_svc *s, __u32 client, __u16 sport, __u32 be_id);

/* A mid-flow ACK of (client, sport) with no entry: it must go to the backend the current
 * table of `color` gives it (*be_id, if not NULL). */
bool fx_midflow(const struct fx_svc *s, __u32 client, __u16 sport, __u32 color, __u32 *be_id);
/* Runs the rest of the test on CPU 0 (per-CPU state such as the SYN-flood guard's window). */
bool fx_pin_cpu0(void);

/* ---- nat replies ---- */

/* A packet from backend be_id answering client packet c (MACs of its next hop, TTL 64,
 * 40 bytes of payload; TCP flags as given). */
void fx_reply_pkt(struct pkt *r, const struct pkt *c, __u32 be_id, __u8 tcp_flags);
/* The frame reply r must become: from VIP:vip_port (host order), TTL - 1, to the MACs of
 * client packet c. */
void fx_expected_reply(const struct fx_svc *s, const struct pkt *c, const struct pkt *r,
		       __u16 vip_port, struct pkt *exp);
/* The same, as handed to the kernel (the client's neighbour unknown): addresses and ports
 * rewritten, TTL and MACs as they came (the kernel's job). */
void fx_expected_reply_kernel(const struct fx_svc *s, const struct pkt *c, const struct pkt *r,
			      __u16 vip_port, struct pkt *exp);
/* Run reply r arriving on ifindex; expect verdict and reason, and (when exp is not NULL)
 * exactly frame exp out, else the frame untouched. */
bool fx_expect_reply(const struct pkt *r, __u32 ifindex, __u32 verdict, enum bgs_reason reason,
		     const struct pkt *exp, const char *what);

/* Move p's flow's last_seen back by by_jiffies (waiting minutes is not an option). */
bool fx_age_flow(const struct pkt *p, __u64 by_jiffies);

#endif /* BGS_FIXTURE_H */

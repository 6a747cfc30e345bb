/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bgswitch map layouts, keys, values, enums and limits: the one definition shared by the
 * XDP program (bpf/) and libbgswitch (user/lib/). Fixed-width types only. Any change to a
 * struct or map here that breaks existing pins bumps BGS_LAYOUT_VERSION.
 */
#ifndef BGSWITCH_H
#define BGSWITCH_H

#include <linux/types.h>

/* Layout of the pinned state; a program or tool refuses pins of another version. */
#define BGS_LAYOUT_VERSION 3

/* Default pin directory (a bpffs); the loader mounts one there if none is mounted. */
#define BGS_DEFAULT_PIN_DIR "/sys/fs/bpf/bgswitch"
/* Where systemd mounts the bpffs; bgs_init mounts one there (mode 0700) if it finds none. */
#define BGS_BPFFS_ROOT "/sys/fs/bpf"

/* Address families as stored in keys (not AF_*: the BPF side has no socket headers). */
#define BGS_AF_INET 4
#define BGS_AF_INET6 6

/* The two pools of a service. */
enum bgs_color {
	BGS_BLUE = 0,
	BGS_GREEN = 1,
	BGS_NR_COLORS = 2,
};

/* Per-service forwarding mode. */
enum bgs_mode {
	BGS_MODE_NAT = 0, /* destination address/port rewritten; replies come back through us */
	BGS_MODE_DSR = 1, /* destination MAC rewritten only; backend answers the client itself */
};

/* Operator's admin state of a backend; never touched by health checks. */
enum bgs_admin {
	BGS_ADMIN_UP = 0,
	BGS_ADMIN_DRAIN = 1, /* keeps its flows, takes no new ones (left out of the tables) */
	BGS_ADMIN_DOWN = 2,  /* its flows are re-chosen */
};

/* Health as seen by the agent's checks; a backend starts up. */
enum bgs_health {
	BGS_HEALTH_UP = 0,
	BGS_HEALTH_DOWN = 1, /* its flows are re-chosen */
};

/* ---- Limits and load-time defaults (sizes are set before load; see docs/sizing) ---- */

/* Default number of services (VIP:port:proto); table memory grows with it. */
#define BGS_DEF_MAX_SERVICES 64
/* Default number of backend records (ids 1..max-1; id 0 means "no backend"). */
#define BGS_DEF_MAX_BACKENDS 4096
/* Default conntrack size: holds at least 1,000,000 flows. */
#define BGS_DEF_CT_ENTRIES 1048576
/* Default Maglev table size per color and slot: a prime near 16k. */
#define BGS_DEF_MAGLEV_SIZE 16381
/* Default SYN-flood guard (new conntrack entries per CPU per second): derived from the
 * table size so that, with every CPU inserting at the limit, each CPU's share of the table
 * (an LRU list per CPU) turns over at most once per BGS_GUARD_TURNOVER_S seconds; at least
 * BGS_MIN_NEW_FLOW_RATE. 1,048,576 entries on 16 CPUs: 8,192 per CPU, 131,072 in all.
 * Flows past it still work, untracked (docs/datapath.md). */
#define BGS_GUARD_TURNOVER_S 8
#define BGS_MIN_NEW_FLOW_RATE 1024
static inline __u32 bgs_default_new_flow_rate(__u32 ct_entries, __u32 ncpus)
{
	__u32 r = ct_entries / ((ncpus ? ncpus : 1) * BGS_GUARD_TURNOVER_S);

	return r > BGS_MIN_NEW_FLOW_RATE ? r : BGS_MIN_NEW_FLOW_RATE;
}
/* Most backends one pool may hold. */
#define BGS_MAX_POOL_BACKENDS 256
/* Largest backend weight. */
#define BGS_MAX_WEIGHT 65535
/* Longest service name, with its NUL. */
#define BGS_NAME_MAX 32

/* Default idle timeouts in seconds, per protocol and TCP state (load-time parameters). */
#define BGS_DEF_TIMEOUT_TCP_SYN 60
#define BGS_DEF_TIMEOUT_TCP_EST 900
#define BGS_DEF_TIMEOUT_TCP_CLOSE 30
#define BGS_DEF_TIMEOUT_UDP 300
/* A SYN re-picks the backend of a closed (FIN/RST) flow only after the flow has been quiet
 * this long (TIME_WAIT-like), and a flow stays on a health-down backend this long. */
#define BGS_DEF_TIME_WAIT 10
#define BGS_DEF_HEALTH_GRACE 10

/* The loaded idle timeouts and intervals of the flow-liveness rule (bgswitch_flow.h), in
 * seconds. Stored in bgs_meta when the pinned state is created; the program reads them
 * from there on every packet, so what user space reads is what the program enforces. */
struct bgs_flow_timeouts {
	__u32 tcp_syn;	    /* TCP, SYN seen, not established */
	__u32 tcp_est;	    /* TCP established */
	__u32 tcp_close;    /* TCP after FIN or RST */
	__u32 udp;	    /* UDP */
	__u32 time_wait;    /* a SYN re-picks a closed flow only once it has been quiet this long */
	__u32 health_grace; /* flows stay on a health-down backend this long (admin down: none) */
};

/* Default seeds of the flow hashes: every LB host with the same config picks the same
 * backend (Maglev) and the canary draw is independent of the backend draw. A deployment
 * can choose its own (bgs_sizes.maglev_seed/canary_seed, stored in bgs_meta) to keep the
 * draws private; hosts that share them still pick alike. */
#define BGS_MAGLEV_SEED 0x6267736du
#define BGS_CANARY_SEED 0x63616e61u
/* Seeds of the two permutation hashes a Maglev table is built from (user space only). */
#define BGS_MAGLEV_OFFSET_SEED 0x4f464653u
#define BGS_MAGLEV_SKIP_SEED 0x534b4950u

/* Canary weights are in basis points: 10000 = every new flow to the idle color. */
#define BGS_CANARY_SCALE 10000

/* ---- The flip word: one u64 per service, published by one atomic store ---- */
/*
 * bit 0      live color (0 blue, 1 green)
 * bit 1      draining: the previous live color's flows are being drained
 * bit 2      table slot blue uses (0/1)
 * bit 3      table slot green uses (0/1)
 * bit 4      canary is sticky: drawn by source address, not by flow
 * bit 5      service active (set once its config is complete)
 * bit 6      which copy of the drain fields (struct bgs_flip.drain[]) goes with this word
 * bits 8-23  canary weight in basis points (0..10000)
 * bits 32-63 generation, +1 on every publish
 */
#define BGS_FW_LIVE_GREEN (1ULL << 0)
#define BGS_FW_DRAINING (1ULL << 1)
#define BGS_FW_SLOT_SHIFT 2
#define BGS_FW_STICKY (1ULL << 4)
#define BGS_FW_ACTIVE (1ULL << 5)
#define BGS_FW_DRAIN_COPY (1ULL << 6)
#define BGS_FW_CANARY_SHIFT 8
#define BGS_FW_CANARY_MASK 0xffffULL
#define BGS_FW_GEN_SHIFT 32

static inline __u32 bgs_fw_live(__u64 w)
{
	return (__u32)(w & BGS_FW_LIVE_GREEN);
}

static inline __u32 bgs_fw_slot(__u64 w, __u32 color)
{
	return (__u32)((w >> (BGS_FW_SLOT_SHIFT + color)) & 1);
}

static inline __u32 bgs_fw_canary(__u64 w)
{
	return (__u32)((w >> BGS_FW_CANARY_SHIFT) & BGS_FW_CANARY_MASK);
}

static inline __u32 bgs_fw_gen(__u64 w)
{
	return (__u32)(w >> BGS_FW_GEN_SHIFT);
}

static inline __u32 bgs_fw_drain_copy(__u64 w)
{
	return (__u32)((w & BGS_FW_DRAIN_COPY) >> 6);
}

/* One copy of a service's drain fields. */
struct bgs_drain {
	__u64 deadline; /* jiffies when the drain ends (~0 = never) */
	__u32 gen;	/* generation of the flip that started the drain */
	__u32 pad;
};

/*
 * Value of the mmapable flip array (bgs_flip), one per service id. The drain fields are
 * double-buffered: a writer fills the copy the current word does not select (gen first,
 * then deadline), then publishes a word whose BGS_FW_DRAIN_COPY bit selects it, so one
 * read of the word selects a consistent set whatever a writer is doing to the other copy.
 * A reader reads the word, then the selected deadline, then its gen, and trusts the copy
 * only when gen <= the word's generation (so even a copy rewritten under a slow reader,
 * two drain changes later, is either whole-old or refused). bgs_flip_view_init()
 * (bgswitch_flow.h) is that reader.
 */
struct bgs_flip {
	__u64 word;		 /* the flip word above; read once per packet */
	struct bgs_drain drain[2]; /* the one word bit 6 selects is current */
	__u32 epoch; /* the service's incarnation: +1 every time the id is given a service (or
		      * the service's VIP, ports, protocol or mode change); stored before the
		      * word that activates it. A flow records it: an entry of another epoch is
		      * not this service's (the known-flow path compares it, not the record) */
	__u32 pad;
};

/* The drain copy a snapshot's own word selects. */
static inline const struct bgs_drain *bgs_flip_drain(const struct bgs_flip *fl)
{
	return &fl->drain[bgs_fw_drain_copy(fl->word)];
}

#ifndef __bpf__
/*
 * The writer's half (user space, under the pin-directory lock): fills the drain copy that
 * word w (the one about to be replaced) does not select, gen first, then deadline, and
 * returns w with BGS_FW_DRAIN_COPY selecting it. The caller then publishes the returned
 * word (with its other changes) with one release store.
 */
static inline __u64 bgs_flip_drain_stage(struct bgs_flip *fl, __u64 w, __u64 deadline, __u32 gen)
{
	struct bgs_drain *d = &fl->drain[bgs_fw_drain_copy(w) ^ 1];

	__atomic_store_n(&d->gen, gen, __ATOMIC_RELAXED);
	__atomic_store_n(&d->deadline, deadline, __ATOMIC_RELEASE);
	return w ^ BGS_FW_DRAIN_COPY;
}
#endif

/* Index of table entry h of (svc, color, slot) in bgs_maglev; M = Maglev table size. */
static inline __u64 bgs_maglev_index(__u32 svc_id, __u32 color, __u32 slot, __u32 m, __u32 h)
{
	return ((((__u64)svc_id * BGS_NR_COLORS + color) * 2 + slot) * m) + h;
}

/* bgs_maglev holds __u32 backend ids (0 = empty pool); an array map's elements are 8 bytes
 * apart in its mmap()ed memory. */
#define BGS_MAGLEV_STRIDE 8

/* ---- Services ---- */

/* Key of bgs_vips: destination of a client packet. Addresses are network-order words;
 * an IPv4 address is addr[0] with the rest zero. */
struct bgs_vip_key {
	__u32 addr[4];
	__be16 port;
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family; /* BGS_AF_INET or BGS_AF_INET6 */
};

/* Value of bgs_vips. */
struct bgs_vip_val {
	__u32 svc_id;
	__u32 flags; /* BGS_VIP_PREVIEW_PORT: this key is the service's preview port */
};
#define BGS_VIP_PREVIEW_PORT (1u << 0)
/* A key with port 0 and proto 0 marks an address that is some service's VIP, so that
 * packets without ports (fragments, ICMP, other protocols) to it get their own verdicts. */
#define BGS_VIP_ADDRESS (1u << 1)

/* Value of bgs_svcs, one per service id. */
struct bgs_service {
	__u32 vip[4];
	__be16 port;
	__be16 preview_port; /* 0 = none; nat only */
	__u8 proto;
	__u8 family;
	__u8 mode;  /* enum bgs_mode */
	__u8 flags; /* BGS_SVC_* */
	char name[BGS_NAME_MAX];
};
#define BGS_SVC_IN_USE (1u << 0)
#define BGS_SVC_HAS_PREVIEW (1u << 1) /* preview prefixes exist: consult the LPM for new flows */

/*
 * Value of bgs_ports (index: port, host order): which protocols use the port as a VIP port
 * (or preview port) and as a nat backend's port, and which VIP addresses use it. The
 * program looks up a conntrack entry, a VIP or a nat backend only for ports flagged here
 * and (VIPs) destination addresses whose bit is set in vip_bloom, so other traffic costs no
 * hash lookup; when one service alone uses the port with a protocol, vip_svc names it and
 * a new flow needs no bgs_vips lookup either (its record is compared with the packet).
 * Written before the keys it announces are inserted, recomputed after they are gone; a
 * reader that sees a mix of old and new fields only does a lookup that misses, or (the
 * hint) names a service whose key is not there yet.
 */
struct bgs_port {
	__u32 flags;	  /* BGS_PORT_* */
	__u32 vip_svc[2]; /* [0] TCP, [1] UDP: 1 + the service id when exactly one service's
			   * VIP key (port or preview port) has this port and protocol */
	__u32 pad;
	__u64 vip_bloom;  /* bit bgs_addr_bloom_bit(addr) of every VIP address using the port */
};
#define BGS_PORT_VIP_TCP (1u << 0)
#define BGS_PORT_VIP_UDP (1u << 1)
#define BGS_PORT_NAT_TCP (1u << 2)
#define BGS_PORT_NAT_UDP (1u << 3)
/* Entries of bgs_ports: one per port. */
#define BGS_NR_PORTS 65536

/* Key of bgs_preview (LPM trie): prefixlen counts the 32 bits of svc_id plus the address's. */
struct bgs_preview_key {
	__u32 prefixlen;
	__u32 svc_id; /* network order, so the trie matches it first, whole */
	__u32 addr[4];
};

/* ---- Backends ---- */

/* Value of bgs_backends, one per backend id. An array update is a plain copy (a reader
 * may see old and new bytes mixed), so: a record that becomes in use under a new
 * incarnation is written first not in use, then in use (no reader pairs the new "in use"
 * with the old incarnation); in place only the admin and health bytes change, and
 * health_down_at in a write of its own while health reads up. */
struct bgs_backend {
	__u32 addr[4];
	__be16 port;
	__u8 family;
	__u8 flags;  /* BGS_BE_* */
	__u8 admin;  /* enum bgs_admin */
	__u8 health; /* enum bgs_health */
	__u8 color;
	__u8 pad;
	__u32 svc_id;
	__u32 incarnation; /* +1 each time the id is given out; conntrack checks it */
	__u32 weight;
	__u32 ifindex; /* egress interface, in the LB's namespace; 0 = next hop unresolved */
	__u8 dmac[6];  /* next hop's MAC */
	__u8 smac[6];  /* egress interface's MAC */
	__u64 health_down_at; /* jiffies when health went down; written while health is up,
			       * before the health byte (bgswitch_flow.h: the grace period) */
};
#define BGS_BE_IN_USE (1u << 0)
#define BGS_BE_NEXTHOP (1u << 1) /* ifindex/dmac/smac are resolved */

/* A nat backend as the source of a reply. */
struct bgs_revnat_key {
	__u32 addr[4];
	__be16 port;
	__u8 proto;
	__u8 family;
};

/*
 * Value of bgs_revnat, an open-addressing table in an array (the reply path's lookup is
 * then inlined array reads, not a hash-map helper call): a key lives in one of the
 * BGS_REVNAT_PROBES slots from bgs_revnat_hash(key) & (size - 1). It holds all a reply
 * needs, so a reply reads no service or backend record. User space writes every field
 * first and sets `used` last (release store); it reuses a freed slot only after the kernel
 * has let running programs finish. Changed in place while used (each an aligned 32-bit
 * store): ifindex when the backend's next hop changes; backend_id and incarnation when the
 * backend's record moves to another id.
 */
struct bgs_revnat_slot {
	struct bgs_revnat_key key;
	__u32 svc_id;	   /* the service whose VIP the reply's source becomes */
	__u32 used;	   /* 1: the slot is valid */
	__u32 backend_id;  /* the backend with this address: a flow's entry must name it ... */
	__u32 incarnation; /* ... and this incarnation for the reply to be the flow's */
	__u32 ifindex;	   /* its next hop's interface: replies must arrive there (0: its next
			    * hop is unresolved, the kernel routes: any interface) */
	__u32 vip[4];	   /* the service's VIP and ports (network order): a reply's source */
	__be16 vip_port;
	__be16 preview_port; /* 0: none */
	__u32 pad;	     /* 64 bytes: the element stride (user space indexes its mmap) */
};
#define BGS_REVNAT_PROBES 8

/* Slots of bgs_revnat for max_backends backend ids: a power of two, at most 1/8 full. */
static inline __u32 bgs_revnat_size(__u32 max_backends)
{
	__u32 n = 64;

	/* In 64 bits and capped: no max_backends makes it wrap or loop forever. */
	while (n < (1u << 31) && (__u64)n < 8ULL * max_backends)
		n <<= 1;
	return n;
}

/* ---- Conntrack ---- */

/* Key of bgs_ct: the client-side tuple of a flow (client -> VIP). */
struct bgs_flow_key {
	__u32 src[4];
	__u32 dst[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

/* TCP state bits of a flow. */
#define BGS_TCP_SYN (1u << 0)
#define BGS_TCP_EST (1u << 1)
#define BGS_TCP_FIN (1u << 2)
#define BGS_TCP_RST (1u << 3)
/* nat: the FIN or RST came from the backend itself (reply path, its interface): the close
 * is confirmed, a SYN on the tuple is a new connection at once (no TIME_WAIT wait). */
#define BGS_TCP_BE_CLOSED (1u << 4)

/* Value of bgs_ct; changed in place, last_seen at most about once a second. */
struct bgs_flow {
	__u32 backend_id;
	__u32 incarnation; /* of the backend when the flow was created */
	__u32 gen;	   /* flip word generation at creation */
	__u32 svc_id;
	__u64 last_seen;  /* jiffies */
	__u32 rev_ifindex; /* interface the client's first packet came in on */
	__u8 rev_dmac[6];  /* MAC that packet came from: replies go to it */
	__u8 rev_smac[6];  /* MAC it was sent to: replies come from it */
	__u8 color;
	__u8 tcp_state; /* BGS_TCP_* */
	__u8 mode;	/* the service's bgs_mode */
	__u8 flags;	/* BGS_FLOW_MOVED */
	__u32 epoch;	/* the service's epoch (struct bgs_flip) at creation */
};
/* The entry replaced one of its tuple that the end of a drain let go (BGS_FLOW_DRAINED): the
 * flow moved off the drained color at the generation it records. bgs_drain_kill counts such
 * flows of the generation its drain end published as flows it ended (a flow whose packet
 * came between the drain end and the removal of its entry). A switch before it wrote 0. */
#define BGS_FLOW_MOVED (1u << 0)

/*
 * Fresh-flow marks (bgs_fresh): a bounded record, without conntrack's eviction, of "this
 * tuple started a new flow while its service drains". Every SYN routed as a new flow during
 * a drain stores the tuple's stamp (bgs_fresh_stamp(): a hash of the tuple seeded with the
 * service and the drain's generation, never 0) in the line its Maglev hash names, replacing
 * the line's oldest mark; a mid-flow packet without an entry during that drain whose line
 * holds its own stamp is a flow that started on the live color (its entry was evicted or
 * never inserted) and goes live, not to the drained color. Another drain has other stamps,
 * so nothing is ever cleared. A mark is lost only when BGS_FRESH_WAYS later SYNs (of any
 * drain) land in its line (that flow then falls back to the drained color, the behaviour
 * without marks); a stamp matches another tuple only by a 32-bit collision.
 * docs/datapath.md: "Conntrack under pressure".
 */
/* Marks per line (one 64-byte line, the array's element): a SYN replaces the oldest. */
#define BGS_FRESH_WAYS 8
/* Fewest marks (8 MiB): 2^17 lines, so a mark outlives about 2^17 later SYNs of the drain
 * with a probability below 1e-5 (at least 8 of them in its line, Poisson of mean 1). */
#define BGS_FRESH_MIN_SLOTS (1u << 20)
/* Seed of the stamp hash (mixed with the service id and the drain's generation). */
#define BGS_FRESH_SEED 0x66726573u

/* One mark of bgs_fresh. */
struct bgs_fresh_mark {
	__u32 stamp; /* bgs_fresh_stamp() of the tuple; 0: unused */
	__u32 at;    /* jiffies (low 32 bits) when it was stored: the oldest is replaced */
};

/* Value of bgs_fresh: the marks of one line. */
struct bgs_fresh_line {
	struct bgs_fresh_mark mark[BGS_FRESH_WAYS];
};

/* Lines of bgs_fresh for a conntrack of ct_entries: marks a power of two, at least one per
 * entry and at least BGS_FRESH_MIN_SLOTS (8 B a mark: 1/19 of conntrack's memory). */
static inline __u32 bgs_fresh_lines(__u32 ct_entries)
{
	__u32 n = BGS_FRESH_MIN_SLOTS;

	while (n < (1u << 30) && n < ct_entries)
		n <<= 1;
	return n / BGS_FRESH_WAYS;
}

/* ---- Counters (per CPU) ---- */

/* Value of bgs_svc_stats (index svc_id * 2 + color) and bgs_be_stats (index backend id). */
struct bgs_counter {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
	__u64 resets;	/* nat: replies with RST a backend sent for a tracked flow */
};

/* Why a packet got its verdict; each has a counter in bgs_reasons (per CPU). */
enum bgs_reason {
	BGS_R_FWD_TX = 0,	 /* forwarded out the interface it came in on */
	BGS_R_FWD_REDIRECT,	 /* forwarded out another interface (devmap) */
	BGS_R_REPLY_TX,		 /* nat reply rewritten to the VIP, XDP_TX */
	BGS_R_REPLY_REDIRECT,	 /* nat reply rewritten to the VIP, devmap */
	BGS_R_PASS_NOT_IP,	 /* not IPv4/IPv6 (ARP, LLDP, ...): to the kernel */
	BGS_R_PASS_VLAN,	 /* VLAN-tagged: to the kernel, untouched */
	BGS_R_PASS_NOT_VIP,	 /* IP, but no service and no nat backend: to the kernel */
	BGS_R_PASS_PROTO,	 /* to a VIP but neither TCP, UDP nor a tracked ICMP error */
	BGS_R_PASS_TTL,		 /* nat: TTL/hop limit would expire: kernel answers */
	BGS_R_PASS_NO_NEXTHOP,	 /* nat: backend's next hop unresolved: kernel forwards */
	BGS_R_PASS_REPLY_NO_FLOW, /* from a nat backend, no tracked flow: to the kernel */
	BGS_R_DROP_MALFORMED,	 /* truncated or invalid IPv4/IPv6 header */
	BGS_R_DROP_L4_TRUNC,	 /* to a VIP, TCP/UDP header truncated */
	BGS_R_DROP_FRAGMENT,	 /* to a VIP, a first fragment (the rest can't be routed) */
	BGS_R_PASS_FRAGMENT,	 /* a non-first fragment: ports unknown, to the kernel */
	BGS_R_DROP_IP_OPTIONS,	 /* to a VIP, IPv4 with options */
	BGS_R_DROP_EXT_HDR,	 /* to a VIP, IPv6 extension header */
	BGS_R_DROP_NO_BACKEND,	 /* neither pool has a usable backend */
	BGS_R_DROP_NO_NEXTHOP,	 /* dsr: backend's next hop unresolved */
	BGS_R_DROP_INACTIVE,	 /* service in the VIP map but not active */
	BGS_R_ICMP_FWD,		 /* ICMP error about a tracked flow, sent to its backend */
	BGS_R_PASS_ICMP,	 /* ICMP to a VIP about no tracked flow: to the kernel */
	BGS_R_CT_SKIPPED,	 /* not a verdict: new flow routed without an entry (flood guard) */
	BGS_R_CT_FULL,		 /* not a verdict: conntrack insert failed */
	BGS_R_PASS_NO_SWITCH,	 /* entry: switch program missing from the program array */
	BGS_R_REPLY_UNTRACKED,	 /* nat reply without an entry, rewritten to the VIP, out the
				  * FIB's next hop (SYN-ACK, UDP; any TCP during a flood) */
	BGS_R_PASS_REPLY_UNTRACKED, /* the same, next hop unknown: rewritten, kernel forwards */
	BGS_R_DROP_REPLY_NO_FLOW, /* from a nat backend, not to this host, no flow and not
				   * translatable without one */
	BGS_R_DROP_REPLY_IFACE,	 /* from a nat backend's address on another interface than
				  * its next hop's, not to this host (spoofed) */
	BGS_R_DROP_UNTRACKABLE,	 /* nat preview-port new flow that cannot be tracked (guard,
				  * full table): its replies could not be told apart */
	BGS_R_ICMP_TO_CLIENT,	 /* ICMP error from the backend side about a nat flow,
				  * its quote rewritten to the VIP, sent to the client */
	/* from here on: counters in bgs_reasons_more (see BGS_R_BASE_ENTRIES) */
	BGS_R_CT_MIDFLOW,	 /* not a verdict: TCP mid-flow packet without an entry (evicted,
				  * never inserted, idled out, another LB's), routed by the
				  * mid-flow rule */
	BGS_R_MIDFLOW_DRAINED,	 /* not a verdict: of those, sent to the drained color */
	BGS_R_MIDFLOW_FRESH,	 /* not a verdict: of those, during a drain, kept on the live
				  * color by its SYN's fresh-flow mark */
	/* not verdicts: a packet of a tracked flow whose entry no longer holds it, by why
	 * (enum bgs_flow_verdict, bgswitch_flow.h, in its order); the packet is then routed
	 * as new (or, idle and service gone, by the mid-flow rule) */
	BGS_R_CT_STALE_BACKEND_GONE, /* its backend deleted or its id given out again */
	BGS_R_CT_STALE_ADMIN_DOWN,   /* its backend set down by the operator */
	BGS_R_CT_STALE_HEALTH_DOWN,  /* its backend health-down past the grace period */
	BGS_R_CT_STALE_IDLE,	     /* idle past its timeout */
	BGS_R_CT_STALE_CLOSED,	     /* closed, and a SYN reuses its tuple */
	BGS_R_CT_STALE_DRAINED,	     /* on the drained color, its drain over */
	BGS_R_CT_STALE_SERVICE_GONE, /* its service inactive or of another epoch */
	BGS_R_MAX,
};
/* Entries of bgs_reasons: the reasons of layout 3's first release, whose pins an upgrade
 * reuses (a map's size cannot change under its pin). Later reasons count in
 * bgs_reasons_more, index reason - BGS_R_BASE_ENTRIES; a switch that predates them leaves
 * them at 0. */
#define BGS_R_BASE_ENTRIES (BGS_R_ICMP_TO_CLIENT + 1)
/* Entries of bgs_reasons_more: room for reasons to come without another map. */
#define BGS_R_MORE_ENTRIES 16

/* Value of bgs_reasons. */
struct bgs_reason_counter {
	__u64 packets;
	__u64 bytes;
};

/* Value of bgs_flood (per CPU, one entry): new-flow rate window of the SYN-flood guard. */
struct bgs_flood {
	__u64 window; /* jiffies at the start of the current one-second window */
	__u64 count;  /* entries inserted in it */
};

/* Value of bgs_guard (one entry, all CPUs): when a CPU's SYN-flood guard last refused an
 * insert. While one did within BGS_GUARD_HOLD_S, nat replies of any TCP flow without an
 * entry are translated (the flows the guard left untracked); otherwise only SYN-ACKs. */
struct bgs_guard {
	__u64 tripped_at; /* jiffies; 0 never */
};
#define BGS_GUARD_HOLD_S 60

/* Value of bgs_meta (one entry): what the pinned state was created with. */
struct bgs_meta {
	__u32 layout_version;
	__u32 max_services;
	__u32 max_backends;
	__u32 maglev_size;
	__u32 ct_entries;
	__u32 new_flow_rate;
	__u32 hz; /* kernel CONFIG_HZ: jiffies per second */
	__u32 changes; /* user space only: +1 by every change made under the pin-directory lock,
			* so a watcher re-reads the pins only when they changed */
	struct bgs_flow_timeouts timeouts; /* what the program enforces (read per packet) */
	__u32 maglev_seed; /* seed of the flow hash that indexes the Maglev tables */
	__u32 canary_seed; /* seed of the canary draw */
};

/* Context of the bgs_clock syscall program: how user space reads the program's clock. */
struct bgs_clock {
	__u64 jiffies;
	__u64 hz;
};

/* Index of the switch in bgs_progs, the program array the attached entry tail-calls. */
#define BGS_PROG_SWITCH 0

#endif /* BGSWITCH_H */

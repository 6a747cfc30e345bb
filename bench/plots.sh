#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# bench/plots.sh DATA_DIR OUT_DIR: the PNG plots of docs/benchmarks.md, from the raw results
# bench/fwd.sh wrote (`make bench-plots`): OUT_DIR/bench-fwd.png (packets/s per case, median
# and range over rounds) and OUT_DIR/bench-flip.png (a flip and a rollback under load,
# 10 ms bins, per color and per backend). Also prints the forwarding table (medians,
# ratios) that docs/benchmarks.md quotes.
set -euo pipefail

data=${1:-docs/bench-data}
outdir=${2:-docs}
command -v gnuplot >/dev/null || { echo "plots: no gnuplot (run make deps)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/bgs-plots.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# --- forwarding: median, lowest and highest rate per case over the rounds ---------------
# The rate is pps_per_lb_cpu (column 8): packets delivered per second of CPU time of the
# LB's receive thread, i.e. what one LB core forwards, whatever share of the core the
# shared machine gave it; column 3 is the wall-clock rate.
col=${FWD_COL:-8}
fwd=$data/fwd.csv
[ -f "$fwd" ] || { echo "plots: no $fwd (run make bench-fwd)" >&2; exit 1; }
# per case: median min max (Mpps)
grep -v '^#' "$fwd" | tail -n +2 | awk -F, -v k="$col" '{ print $2, $k }' | sort -k1,1 -k2,2n |
	awk '
	function flush() {
		if (n) printf "%s %.4f %.4f %.4f\n", c, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) / 1e6, v[1] / 1e6, v[n] / 1e6
	}
	$1 != c { flush(); c = $1; n = 0 }
	{ v[++n] = $2 }
	END { flush() }' >"$tmp/cases"
# one row per traffic kind, columns per implementation: median lo hi x 4
{
	# columns: kind, then median lo hi of nat, dsr, minimal, nftables (no header line)
	for k in 4tcp 4udp 6tcp 6udp; do
		printf 'v%s' "$k"
		for impl in nat dsr min nft; do
			awk -v c="$impl$k" '$1 == c { printf " %s %s %s", $2, $3, $4; f = 1 }
				END { if (!f) printf " 0 0 0" }' "$tmp/cases"
		done
		echo
	done
} >"$tmp/fwd.dat"

gnuplot <<EOF
set terminal pngcairo size 1000,520 font "sans,11"
set output "$outdir/bench-fwd.png"
set title "Forwarding on veth (64-byte frames; v6: 84): Mpps per LB core, median and range of the rounds"
set ylabel "delivered Mpps per second of LB CPU"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set key top right
set yrange [0:*]
set grid ytics
plot "$tmp/fwd.dat" using 2:3:4:xtic(1) title "bgswitch nat" lc rgb "#1f77b4", \
     '' using 5:6:7 title "bgswitch dsr" lc rgb "#2ca02c", \
     '' using 8:9:10 title "minimal XDP (ceiling)" lc rgb "#7f7f7f", \
     '' using 11:12:13 title "nftables DNAT + conntrack" lc rgb "#d62728"
EOF
echo "plots: $outdir/bench-fwd.png"

# --- ratios per round (paired: the cases of one round ran back to back) -----------------
echo
echo "(column $col of $fwd)"
echo
echo "| traffic | bgswitch | Mpps (median, range) | minimal Mpps | nftables Mpps | / minimal: median (range over rounds) | / nftables: median (range) |"
echo "|---|---|---:|---:|---:|---:|---:|"
for k in 4tcp 4udp 6tcp 6udp; do
	for impl in nat dsr; do
		grep -v '^#' "$fwd" | tail -n +2 | awk -F, -v a="$impl$k" -v m="min$k" -v n="nft$k" -v c="$col" '
			$2 == a { A[$1] = $c } $2 == m { M[$1] = $c } $2 == n { N[$1] = $c }
			END { for (r in A) if (M[r] && N[r]) print A[r] / M[r], A[r] / N[r] }' >"$tmp/ratios"
		[ -s "$tmp/ratios" ] || continue
		rm_med=$(cut -d' ' -f1 "$tmp/ratios" | sort -g | awk '{ v[++n] = $1 } END { printf "%.2f (%.2f-%.2f)", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[1], v[n] }')
		rn_med=$(cut -d' ' -f2 "$tmp/ratios" | sort -g | awk '{ v[++n] = $1 } END { printf "%.2f (%.2f-%.2f)", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[1], v[n] }')
		fmt() { awk -v c="$1" '$1 == c { printf "%.3f (%.3f-%.3f)", $2, $3, $4 }' "$tmp/cases"; }
		echo "| v$k | $impl | $(fmt "$impl$k") | $(fmt "min$k") | $(fmt "nft$k") | ${rm_med}x | ${rn_med}x |"
	done
done

# --- the flip under load ------------------------------------------------------------------
bins=$data/flip-bins.csv
events=$data/flip-events.csv
if [ ! -f "$bins" ] || [ ! -f "$events" ]; then
	echo "plots: no flip data in $data (FWD_FLIP=1 bench/fwd.sh)" >&2
	exit 0
fi
ev() { awk -F, -v e="$1" '$1 == e { printf "%.3f", $2 / 1000 }' "$events"; }
t_meas=$(ev measure)
t_flip=$(ev flip)
t_back=$(ev rollback)
# seconds, then packets/s per color (est, new) and per backend (all kinds); 10 ms bins x 100
awk -F, 'NR > 1 { printf "%.2f %d %d %d %d %d %d %d %d\n", $1 / 1000,
	($2 + $4) * 100, ($3 + $5) * 100, ($6 + $8) * 100, ($7 + $9) * 100,
	($2 + $3) * 100, ($4 + $5) * 100, ($6 + $7) * 100, ($8 + $9) * 100 }' "$bins" >"$tmp/flip.dat"
# the same, averaged over the 10 bins (100 ms) ending at each bin
awk '{ for (i = 2; i <= 9; i++) { s[i] += $i; h[NR % 10, i] = $i; if (NR > 10) s[i] -= o[i] }
	for (i = 2; i <= 9; i++) o[i] = h[(NR + 1) % 10, i]
	printf "%s", $1; for (i = 2; i <= 9; i++) printf " %d", s[i] / (NR < 10 ? NR : 10); print "" }' \
	"$tmp/flip.dat" >"$tmp/flip100.dat"

gnuplot <<EOF
set terminal pngcairo size 1000,700 font "sans,11"
set output "$outdir/bench-flip.png"
set multiplot layout 2,1 title "bgctl flip at ${t_flip} s and bgctl rollback at ${t_back} s under load (nat, v4 TCP, 10 ms bins)"
set xrange [${t_meas}:*]
set grid
set key top left horizontal
set arrow 1 from ${t_flip}, graph 0 to ${t_flip}, graph 1 nohead dt 2 lc rgb "black"
set arrow 2 from ${t_back}, graph 0 to ${t_back}, graph 1 nohead dt 2 lc rgb "black"
set ylabel "packets/s per color"
set format y "%.1s%c"
set logscale y
set yrange [1000:*]
plot "$tmp/flip.dat" using 1:2 with steps lw 0.5 lc rgb "#c6dbef" notitle, \
     '' using 1:3 with steps lw 0.5 lc rgb "#c7e9c0" notitle, \
     '' using 1:4 with steps lw 0.5 lc rgb "#c7e9c0" notitle, \
     '' using 1:5 with steps lw 0.5 lc rgb "#fdd0a2" notitle, \
     "$tmp/flip100.dat" using 1:2 title "blue, established flows" with lines lw 2 lc rgb "#1f77b4", \
     '' using 1:3 title "blue, new flows" with lines lw 2 lc rgb "#17becf", \
     '' using 1:4 title "green, established flows" with lines lw 2 lc rgb "#2ca02c", \
     '' using 1:5 title "green, new flows" with lines lw 2 lc rgb "#ff7f0e"
set ylabel "packets/s per backend"
set xlabel "seconds (thin: 10 ms bins; thick: their 100 ms average)"
plot "$tmp/flip.dat" using 1:6 with steps lw 0.5 lc rgb "#c6dbef" notitle, \
     '' using 1:7 with steps lw 0.5 lc rgb "#c6dbef" notitle, \
     '' using 1:8 with steps lw 0.5 lc rgb "#fdd0a2" notitle, \
     '' using 1:9 with steps lw 0.5 lc rgb "#fdd0a2" notitle, \
     "$tmp/flip100.dat" using 1:6 title "blue b1" with lines lw 2 lc rgb "#1f77b4", \
     '' using 1:7 title "blue b2" with lines lw 2 lc rgb "#17becf", \
     '' using 1:8 title "green g1" with lines lw 2 lc rgb "#2ca02c", \
     '' using 1:9 title "green g2" with lines lw 2 lc rgb "#ff7f0e"
unset multiplot
EOF
echo "plots: $outdir/bench-flip.png"

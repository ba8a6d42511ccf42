# kubectl-vmmem node probe, output format 2. POSIX sh plus cat only (busybox, SUSE bci-base).
#
# Reads the memory cgroup counters (v1 or v2) of Kubernetes pods and of their containers, the memory
# of each process in them and, for qemu, the guest RAM it holds. One run covers every pod of a node.
#
# Environment:
#   VMMEM_CGROUP_ROOT  the directory that plays the host's /sys/fs/cgroup (default /host/sys/fs/cgroup)
#   VMMEM_PROC_ROOT    the host's /proc (default /proc)
#   VMMEM_KUBEPODS     kubepods cgroups below the memory hierarchy root, space separated
#                      (default "kubepods.slice kubepods"; a name ending in .slice is systemd layout)
#   VMMEM_SELF         a pod UID: the memory hierarchy root is that pod's own (container) cgroup, as
#                      seen from inside a container (then VMMEM_CGROUP_ROOT defaults to /sys/fs/cgroup)
# Arguments: POD_UID or POD_UID:GUEST_BYTES[,BACKEND_BYTES...]; with none, every pod found.
#   With sizes, qemu's /proc/PID/smaps is scanned for guest RAM: the mappings of exactly those sizes.
#
# Output: one record per line, fields separated by one space, '-' where the node has no such value.
#   vmmem-probe 2                      always the first line
#   node VERSION KERNEL                VERSION v1|v2
#   pod UID PATH                       PATH of the pod cgroup below the memory hierarchy root
#   c NAME LIMIT USAGE PEAK FAILCNT OOMKILL ANON FILE SHMEM INACTIVE_FILE ACTIVE_FILE KERNEL
#     KERNEL_STACK PAGETABLES SLAB SOCK ANON_THP PIDS GROUPKILL SWAP SWAP_LIMIT
#                                      (one line) counters of the pod cgroup
#                                      (NAME '.') or of a child of it (NAME its directory name),
#                                      after its pod line; bytes; LIMIT 'max' or a huge number = none;
#                                      OOMKILL v1: this cgroup only, v2: with descendants;
#                                      FAILCNT v2: the 'max' line of memory.events; PIDS 1,2,3 or -;
#                                      GROUPKILL v2 oom_group_kill (kernel 5.17+), else '-';
#                                      SWAP SWAP_LIMIT v2 memory.swap.current and .max, v1
#                                      memory.memsw.usage_in_bytes and .limit_in_bytes (memory
#                                      PLUS swap), '-' where the kernel has no swap accounting
#   p PID RSS_ANON_KB RSS_FILE_KB RSS_SHMEM_KB COMM      a process listed in some PIDS
#   g PID SIZE_KB RSS_KB HUGETLB_KB PAGE_KB KIND         a guest RAM mapping of qemu process PID
#                                      (KIND anon|memfd|shmem|file)
#   u PID BEFORE AFTER                 the usage of the pod cgroup of qemu process PID read right
#                                      before and right after its smaps scan (a guest filling its
#                                      RAM grows between them), after its g records
#   missing UID                        no cgroup for this pod here (not on this node, or gone)
#   err MESSAGE                        fatal; nothing follows
#   end                                always the last line of a complete run
#
# Speed (about 100 ms of CPU for 100 pods on a v1 node, 60 ms of wall on 2 cores: batches of pods
# run side by side, see spread() and benches/probe.rs): one-number files
# are read with the shell's own `read` (no process, no buffer); the others by a few `cat`s over many
# files at once (a fork per file would cost more than the reading), split per cgroup and per pod by
# the kernel release file, whose one line can never be a line of a cgroup or status file. glibc's
# cat maps and unmaps a 128 KiB buffer per file unless told to keep it on the heap (the MALLOC_
# settings; other cats ignore them). The shell reads a command's output 128 bytes at a time, so
# every byte captured costs: only files the records use are read.

set -f
if [ -n "$VMMEM_SELF" ]; then CG=${VMMEM_CGROUP_ROOT:-/sys/fs/cgroup}; else CG=${VMMEM_CGROUP_ROOT:-/host/sys/fs/cgroup}; fi
PR=${VMMEM_PROC_ROOT:-/proc}
nl='
'
tab='	'
ws=" $tab"
echo 'vmmem-probe 2'
die() {
	printf 'err %s\n' "$*"
	exit 1
}

SEP=$PR/sys/kernel/osrelease
K=
read -r K 2>/dev/null <"$SEP"
# It separates the files of one cat: it must not look like a line of them (a number, "key value");
# it starts with a digit like every Linux release (the scan looks for it among such lines).
case $K in [0-9]*[!0-9]*) ;; *) K= ;; esac
case $K in '' | *[$ws]*) die "cannot read the kernel release from $SEP" ;; esac

V=
M=
if [ -r "$CG/cgroup.controllers" ]; then
	c=
	read -r c 2>/dev/null <"$CG/cgroup.controllers"
	case " $c " in *" memory "*) V=v2 M=$CG ;; esac
fi
if [ -z "$V" ] && [ -r "$CG/memory/memory.usage_in_bytes" ]; then V=v1 M=$CG/memory; fi
[ -n "$V" ] || die "no memory cgroup hierarchy at $CG: neither $CG/memory/memory.usage_in_bytes" \
	"(cgroup v1) nor memory in $CG/cgroup.controllers (cgroup v2)"
printf 'node %s %s\n' "$V" "$K"
# Paths below are relative to the memory hierarchy root: shorter strings, shorter argument lists.
case $PR in /*) ;; *) PR=$PWD/$PR SEP=$PWD/$SEP ;; esac
cd "$M" || die "cannot enter $M"

R=
for r in ${VMMEM_KUBEPODS:-kubepods.slice kubepods}; do
	[ -d "$r" ] && R="$R $r"
done
[ -n "$R" ] || [ -n "$VMMEM_SELF" ] || die "no kubepods cgroup below $M (looked for ${VMMEM_KUBEPODS:-kubepods.slice kubepods};" \
	"set VMMEM_KUBEPODS)"

# $1 with every '-' turned into '_' (systemd slice names), or the reverse with $2 = r; sets S.
swap() {
	S=
	s=$1
	a=-
	b=_
	[ "$2" = r ] && a=_ b=-
	while :; do
		case $s in
		*"$a"*)
			S="$S${s%%"$a"*}$b"
			s=${s#*"$a"}
			;;
		*)
			S=$S$s
			return
			;;
		esac
	done
}

# The pod cgroup of UID $1 below $M, in any layout and QoS class; sets P ('' when none).
find_pod() {
	P=
	if [ -n "$VMMEM_SELF" ]; then
		[ "$1" = "$VMMEM_SELF" ] && P=.
		return
	fi
	swap "$1"
	for r in $R; do
		case $r in
		*.slice)
			b=${r##*/}
			b=${b%.slice}
			for c in "$r/$b-burstable.slice/$b-burstable-pod$S.slice" \
				"$r/$b-besteffort.slice/$b-besteffort-pod$S.slice" "$r/$b-pod$S.slice"; do
				[ -d "$c" ] && P=$c && return
			done
			;;
		*)
			for c in "$r/burstable/pod$1" "$r/besteffort/pod$1" "$r/pod$1"; do
				[ -d "$c" ] && P=$c && return
			done
			;;
		esac
	done
}

# Every pod UID below the kubepods cgroups; sets A.
list_pods() {
	A=$VMMEM_SELF
	[ -n "$A" ] && return
	set +f
	for r in $R; do
		case $r in
		*.slice)
			b=${r##*/}
			b=${b%.slice}
			for d in "$r/$b-burstable.slice/$b-burstable-pod"*.slice \
				"$r/$b-besteffort.slice/$b-besteffort-pod"*.slice "$r/$b-pod"*.slice; do
				[ -d "$d" ] || continue
				d=${d##*-pod}
				swap "${d%.slice}" r
				A="$A $S"
			done
			;;
		*)
			for d in "$r/burstable/pod"* "$r/besteffort/pod"* "$r/pod"*; do
				[ -d "$d" ] && A="$A ${d##*/pod}"
			done
			;;
		esac
	done
	set -f
}

# Read the one-number files of cgroup directory $2 now (the shell's own read: no process, no
# buffer to map), and queue its other files for the next batch, with descriptor $1.
F=
D=
X=
W=
add_cg() {
	d=$2
	v1=
	v2=
	v3=
	v4=
	v5=
	v6=
	v7=
	# Whether kernel memory is accounted (v1) or memory.peak exists (v2, Linux 5.19+) is the same
	# for every cgroup of a node: look once. One stderr redirection for the group, not one a file.
	if [ $V = v1 ]; then
		[ -n "$X" ] || { [ -e "$d/memory.kmem.usage_in_bytes" ] && X=y || X=n; }
		[ -n "$W" ] || { [ -e "$d/memory.memsw.usage_in_bytes" ] && W=y || W=n; }
		{
			read -r v1 <"$d/memory.limit_in_bytes"
			read -r v2 <"$d/memory.usage_in_bytes"
			read -r v3 <"$d/memory.max_usage_in_bytes"
			read -r v4 <"$d/memory.failcnt"
			[ $X = n ] || read -r v5 <"$d/memory.kmem.usage_in_bytes"
			[ $W = n ] || { read -r v6 <"$d/memory.memsw.usage_in_bytes"; read -r v7 <"$d/memory.memsw.limit_in_bytes"; }
		} 2>/dev/null
		f="$d/memory.oom_control $d/memory.stat $d/cgroup.procs"
	else
		[ -n "$X" ] || { [ -e "$d/memory.peak" ] && X=y || X=n; }
		[ -n "$W" ] || { [ -e "$d/memory.swap.current" ] && W=y || W=n; }
		{
			read -r v1 <"$d/memory.max"
			read -r v2 <"$d/memory.current"
			[ $X = n ] || read -r v3 <"$d/memory.peak"
			[ $W = n ] || { read -r v6 <"$d/memory.swap.current"; read -r v7 <"$d/memory.swap.max"; }
		} 2>/dev/null
		f="$d/memory.events $d/memory.stat $d/cgroup.procs"
	fi
	# Numbers only (v2's limit may be "max"); anything else is unknown.
	case $v1 in max) ;; '' | *[!0-9]*) v1=- ;; esac
	case $v2 in '' | *[!0-9]*) v2=- ;; esac
	case $v3 in '' | *[!0-9]*) v3=- ;; esac
	case $v4 in '' | *[!0-9]*) v4=- ;; esac
	case $v5 in '' | *[!0-9]*) v5=- ;; esac
	case $v6 in '' | *[!0-9]*) v6=- ;; esac
	case $v7 in max) ;; '' | *[!0-9]*) v7=- ;; esac
	PF="$PF $SEP $f"
	PD="$PD $v1:$v2:$v3:$v4:$v5:$v6:$v7:$1"
}

# Print the record of the cgroup just read (descriptor $cur), and queue its processes' status files.
SF=
SD=
fin() {
	[ -n "$cur" ] || return 0
	t=$cur
	p1=${t%%:*}
	t=${t#*:}
	p2=${t%%:*}
	t=${t#*:}
	p3=${t%%:*}
	t=${t#*:}
	p4=${t%%:*}
	t=${t#*:}
	p5=${t%%:*}
	t=${t#*:}
	p6=${t%%:*}
	t=${t#*:}
	p7=${t%%:*}
	t=${t#*:}
	if [ "$p2" = - ]; then
		# The cgroup went away (or could not be read) while it was being read.
		case $t in p:*)
			t=${t#p:}
			echo "missing ${t%%:*}"
			skip=1
			;;
		esac
		return 0
	fi
	case $t in
	p:*)
		t=${t#p:}
		skip=
		printf 'pod %s /%s\n' "${t%%:*}" "${t#*:*:}"
		t=${t#*:}
		SF="$SF $SEP"
		# The guest sizes and, for the usage read around smaps, the pod cgroup's path.
		SD="$SD ${t%%:*}:${t#*:}"
		t=.
		;;
	*)
		[ -n "$skip" ] && return 0
		t=${t#c:}
		;;
	esac
	if [ $V = v1 ]; then
		set -- "$p1" "$p2" "$p3" "$p4" "$ok" "$p5"
	else
		set -- "$p1" "$p2" "$p3" "${fc:--}" "$ok" "${kn:--}"
	fi
	echo "c $t $1 $2 $3 $4 ${5:--} ${an:--} ${fl:--} ${sm:--} ${ia:--} ${aa:--} $6 ${ks:--} ${pt:--}" \
		"${sl:--} ${so:--} ${th:--} ${pl:--} ${gk:--} $p6 $p7"
	IFS=,
	for x in $pl; do SF="$SF $PR/$x/status"; done
	IFS=$nl
}

# Read every queued cgroup with one cat, print its records, then the processes of its pods. A
# line is a separator (the kernel release), a PID (digits) or "key value": one short case for
# most lines, the keys looked at only for the lines that can hold them.
run() {
	[ -n "$D" ] || return 0
	# The first letters of the v2 keys below; on v1 a pattern no line can match.
	V2KEYS=$nl
	[ $V = v2 ] && V2KEYS='[afikmps]*'
	o=$(MALLOC_MMAP_THRESHOLD_=1048576 MALLOC_TRIM_THRESHOLD_=8388608 cat $F 2>/dev/null)
	IFS=' '
	set -- $D
	IFS=$nl
	cur=
	skip=
	for l in $o; do
		case $l in
		[0-9]*)
			case $l in
			*[!0-9]*)
				[ "$l" = "$K" ] || continue
				fin
				cur=$1
				shift
				ok= an= fl= sm= ia= aa= kn= ks= pt= sl= so= th= fc= pl= gk=
				;;
			*) pl=${pl:+$pl,}$l ;;
			esac
			;;
		total_*)
			case $l in
			total_rss" "*) an=${l#* } ;;
			total_cache" "*) fl=${l#* } ;;
			total_shmem" "*) sm=${l#* } ;;
			total_inactive_file" "*) ia=${l#* } ;;
			total_active_file" "*) aa=${l#* } ;;
			total_rss_huge" "*) th=${l#* } ;;
			esac
			;;
		oom_kill" "*) ok=${l#* } ;;
		oom_group_kill" "*) gk=${l#* } ;;
		$V2KEYS)
			case $l in
			anon" "*) an=${l#* } ;;
			file" "*) fl=${l#* } ;;
			shmem" "*) sm=${l#* } ;;
			inactive_file" "*) ia=${l#* } ;;
			active_file" "*) aa=${l#* } ;;
			kernel" "*) kn=${l#* } ;;
			kernel_stack" "*) ks=${l#* } ;;
			pagetables" "*) pt=${l#* } ;;
			slab" "*) sl=${l#* } ;;
			sock" "*) so=${l#* } ;;
			anon_thp" "*) th=${l#* } ;;
			max" "*) fc=${l#* } ;;
			esac
			;;
		esac
	done
	fin
	IFS=' '
	F=
	D=
	status
}

# Read the status of every queued process (one cat, pods separated), print a p record each, and
# scan qemu's smaps in pods that came with guest sizes. Of a status file's ~55 lines only Name,
# Pid and Rss* matter: one pattern turns the others away.
status() {
	[ -n "$SD" ] || return 0
	o=$(MALLOC_MMAP_THRESHOLD_=1048576 MALLOC_TRIM_THRESHOLD_=8388608 cat $SF 2>/dev/null)
	set -- $SD
	SF=
	SD=
	IFS=$nl
	gs=
	pid=
	for l in $o; do
		case $l in
		[NPR][ais]*)
			case $l in
			Name:*)
				proc
				nm=${l#Name:}
				nm=${nm#"$tab"}
				;;
			Pid:*) pid=${l##*[$ws]} ;;
			RssAnon:*)
				ra=${l%" kB"}
				ra=${ra##*[$ws]}
				;;
			RssFile:*)
				rf=${l%" kB"}
				rf=${rf##*[$ws]}
				;;
			RssShmem:*)
				rs=${l%" kB"}
				rs=${rs##*[$ws]}
				;;
			esac
			;;
		[0-9]*)
			[ "$l" = "$K" ] || continue
			proc
			gs=$1
			shift
			;;
		esac
	done
	proc
	IFS=' '
	for q in $Q; do smaps "${q%%=*}" "${q#*=}"; done
	Q=
}

Q=
proc() {
	# Kernel threads and zombies have no Rss lines: nothing to report.
	[ -n "$pid" ] && [ -n "$rs" ] && printf 'p %s %s %s %s %s\n' "$pid" "$ra" "$rf" "$rs" "$nm"
	case $nm in qemu*) [ -n "$pid" ] && [ -n "$rs" ] && [ "${gs%%:*}" != - ] && Q="$Q $pid=$gs" ;; esac
	pid= ra= rf= rs= nm=
}

# Print the mappings of qemu process $1 whose size in kB is one of the comma-separated sizes
# before the ':' of $2 (the pod cgroup's path after it). qemu has hundreds of mappings of ~25
# lines each: outside a guest mapping only the header and Size lines are looked at (G is a
# pattern no line matches), inside it the few keys that matter. The pod's usage is read just
# before and just after, so a guest that fills its RAM meanwhile shows (the u record).
smaps() {
	U=memory.usage_in_bytes
	[ $V = v2 ] && U=memory.current
	ub=
	ua=
	read -r ub 2>/dev/null <"${2#*:}/$U"
	o=$(MALLOC_MMAP_THRESHOLD_=1048576 MALLOC_TRIM_THRESHOLD_=8388608 cat "$PR/$1/smaps" 2>/dev/null)
	read -r ua 2>/dev/null <"${2#*:}/$U"
	set -- "$1" "${2%%:*}"
	IFS=$nl
	m=
	G=$nl
	for l in $o; do
		case $l in
		[0-9a-f]*)
			[ -n "$m" ] && mapping "$1"
			m=
			G=$nl
			h=$l
			;;
		Size:*)
			s=${l%" kB"}
			s=${s##*" "}
			case ",$2," in *",$s,"*) m=$s gr=0 gh=0 gp=0 gk=0 G='[RKSP]*' ;; esac
			;;
		$G)
			case $l in
			Rss:*)
				gr=${l%" kB"}
				gr=${gr##*" "}
				;;
			KernelPageSize:*)
				gk=${l%" kB"}
				gk=${gk##*" "}
				;;
			Shared_Hugetlb:*)
				gh=${l%" kB"}
				gh=${gh##*" "}
				;;
			Private_Hugetlb:*)
				gp=${l%" kB"}
				gp=${gp##*" "}
				;;
			esac
			;;
		esac
	done
	[ -n "$m" ] && mapping "$1"
	case $ub$ua in *[!0-9]*) ;; ?*) [ -n "$ub" ] && [ -n "$ua" ] && echo "u $1 $ub $ua" ;; esac
	IFS=' '
}

mapping() {
	case $h in
	*" /memfd:"*) k=memfd ;;
	*" /dev/shm/"* | *" /SYSV"* | *" /dev/zero"*) k=shmem ;;
	*" /"* | *" anon_inode:"*) k=file ;;
	*) k=anon ;;
	esac
	echo "g $1 $m $gr $((gh + gp)) $gk $k"
}

# A pod argument, UID[:SIZES], checked before any batch starts (a batch runs in a subshell of its
# own: an error there could not stop the run).
check() {
	u=${1%%:*}
	z=
	case $1 in *:*) z=${1#*:} ;; esac
	case $u in '' | *[!0-9a-fA-F-]*) die "bad pod argument '$1' (expected POD_UID or POD_UID:GUEST_BYTES)" ;; esac
	IFS=,
	for s in $z; do
		case $s in '' | *[!0-9]* | ????????????????????*) die "bad guest size '$s' in argument '$1'" ;; esac
	done
	IFS=' '
}

# One pod argument (checked): queue its pod cgroup and container cgroups for the batch's cat.
pod() {
	u=${1%%:*}
	z=
	case $1 in *:*) z=${1#*:} ;; esac
	g=
	IFS=,
	for s in $z; do g=${g:+$g,}$((s / 1024)); done
	IFS=' '
	find_pod "$u"
	if [ -z "$P" ]; then
		echo "missing $u"
		return
	fi
	PF=
	PD=
	add_cg "p:$u:${g:--}:$P" "$P"
	# Containers: the child cgroups (systemd: *.scope; a trailing / would stat every file).
	set +f
	case $P in
	*.slice) set -- "$P"/*.scope ;;
	*) set -- "$P"/*/ ;;
	esac
	set -f
	for d in "$@"; do
		d=${d%/}
		n=${d##*/}
		case $n in '' | *[!A-Za-z0-9._@-]*) continue ;; esac
		[ -d "$d" ] && add_cg "c:$n" "$d"
	done
	# Appending to a long string copies it: build each pod's part apart, append it once.
	F=$F$PF
	D=$D$PD
}

# The pods of one batch: their cgroups with one cat, then their processes with another.
batch() {
	for a in "$@"; do pod "$a"; done
	run
}

# Pods go in batches of BATCH, up to WAVE batches at once (a node has cores to spare; the kernel's
# files and the shell's parsing, not the disk, take the time). Each batch is a subshell; the first
# prints as it goes, the later ones' records are held until it ends, so records keep their order:
# a pod's c lines right after its pod line, its processes after.
BATCH=25
WAVE=4
spread() {
	b=
	i=0
	while [ $# -gt 0 ] && [ $i -lt $BATCH ]; do
		b="$b $1"
		shift
		i=$((i + 1))
	done
	if [ $# -eq 0 ]; then
		batch $b
		return
	fi
	(batch $b) &
	j=$!
	r=$(spread "$@")
	wait $j
	[ -z "$r" ] || printf '%s\n' "$r"
}

IFS=' '
[ $# -gt 0 ] || { list_pods && set -- $A; }
for a in "$@"; do check "$a"; done
while [ $# -gt 0 ]; do
	w=
	i=0
	while [ $# -gt 0 ] && [ $i -lt $((BATCH * WAVE)) ]; do
		w="$w $1"
		shift
		i=$((i + 1))
	done
	spread $w
done
echo end

#!/bin/sh
# PID 1 of sparkler's emulated KVM host (see src/emuhost). Busybox only; the build fills in
# the kernel modules to insmod, dependencies first. (Loading the KVM ones in parallel was slower
# on a loaded machine: module loading synchronises the vCPUs, and TCG's vCPU threads get starved.)
# Layout: /host = this machine's root (9p, read-only), /emu = the run directory (9p, rw) with
# cmd.sh (the command, cwd and environment), mounts (writable shares) and, afterwards, exit.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in @MODULES@; do insmod "/lib/modules/$m.ko" || echo "emuhost: insmod $m failed"; done
o=trans=virtio,version=9p2000.L,msize=512000
# The shared root is read-only and the host lives for one command: cache it (loose).
mount -t 9p -o "$o,ro,cache=loose" root /host || echo "emuhost: cannot mount the shared root"
mount -t 9p -o "$o" run /emu || { echo "emuhost: cannot mount the run directory"; poweroff -f; }
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs shm /host/dev/shm
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup
# A fresh /run, as on a booted system: writable, and Unix sockets work there.
mount -t tmpfs -o mode=755 run /host/run && mkdir -p -m 1777 /host/run/lock
# Writable shares ("tag path" per line); cache=mmap keeps them coherent yet allows shared mmap.
while read -r tag path; do
  mount -t 9p -o "$o,cache=mmap" "$tag" "/host$path" || echo "emuhost: cannot mount $path"
done </emu/mounts
# Every KVM_EXIT_SHUTDOWN (8) this host's KVM hands a VMM - a nested guest that triple-faulted - is
# a line of the trace, copied to /emu/guest-faults every 2 s and at the end: the runner reruns or
# stops a run on it (run.ts). (Streaming trace_pipe instead lost events: 1 of 3 seen once.)
t=/sys/kernel/tracing
e=$t/events/kvm/kvm_userspace_exit
traced=
if mount -t tracefs tracefs $t && echo 'reason == 8' >$e/filter && echo 1 >$e/enable; then
  traced=1
  while sleep 2; do cat $t/trace >/emu/guest-faults; done &
else
  echo "emuhost: nested guests' triple faults are not traced"
fi
# A heartbeat, every 2 s: this host's uptime, how many VMs its KVM holds and the exits they have
# made (debugfs sums over live VMs). The runner reruns an attempt whose host stops beating or
# whose nested guests all stop exiting (run.ts, FROZEN_MS): an idle Linux guest still exits
# about 15 times a second.
d=/sys/kernel/debug
if mount -t debugfs debugfs $d && [ -r $d/kvm/exits ]; then
  while sleep 2; do
    echo "$(cut -d' ' -f1 /proc/uptime) $(ls $d/kvm | grep -c -- '-') $(cat $d/kvm/exits)" >/emu/heartbeat
  done &
else
  echo "emuhost: no KVM statistics in debugfs: a frozen nested guest is found only by the time limit"
fi
# The command reads its script through fd 9, opened outside the chroot.
env -i /bin/chroot /host /bin/sh /proc/self/fd/9 9</emu/cmd.sh </dev/null >/emu/stdout 2>/emu/stderr
rc=$?
[ -n "$traced" ] && cat $t/trace >/emu/guest-faults
echo $rc >/emu/exit
poweroff -f

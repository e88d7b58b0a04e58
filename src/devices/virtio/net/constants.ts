/**
 * Numbers of the virtio network device (virtio 1.2, section 5.1) and of Linux's TUN/TAP
 * interface (include/uapi/linux/if_tun.h, Documentation/networking/tuntap.rst).
 */

/** Feature bits (spec 5.1.3). */
export const NetFeature = {
  CSUM: 0,
  GUEST_CSUM: 1,
  MTU: 3,
  MAC: 5,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  GUEST_UFO: 10,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  HOST_UFO: 14,
  MRG_RXBUF: 15,
  STATUS: 16,
} as const;

/** Queue indices: one receive/transmit pair (no multiqueue, no control queue). */
export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
export const NET_QUEUE_SIZE = 256;

/**
 * struct virtio_net_hdr_v1 (spec 5.1.6): flags u8, gso_type u8, hdr_len u16, gso_size u16,
 * csum_start u16, csum_offset u16, num_buffers u16. With VIRTIO_F_VERSION_1 it is always 12
 * bytes, num_buffers included, whether or not MRG_RXBUF is negotiated.
 */
export const VNET_HDR_SIZE = 12;
export const VNET_HDR_F_NEEDS_CSUM = 1;
export const VNET_HDR_NUM_BUFFERS = 10;

/** Config space (spec 5.1.4): mac[6], status u16, max_virtqueue_pairs u16, mtu u16. */
export const CONFIG_MAC = 0;
export const CONFIG_STATUS = 6;
/** The status field's link-up bit (VIRTIO_NET_S_LINK_UP): a TAP-backed link is always up. */
export const STATUS_LINK_UP = 1;
export const CONFIG_MAX_VQ_PAIRS = 8;
export const CONFIG_MTU = 10;
export const CONFIG_SIZE = 12;

/** An Ethernet header (destination, source, EtherType). */
export const ETH_HEADER = 14;
/**
 * The largest frame either way: a 64 KiB GSO packet plus headers (Firecracker's bound too). A
 * chain whose frame is longer is dropped; the host never reads more than this from the TAP.
 */
export const MAX_FRAME_SIZE = 65550;
export const MAX_BUFFER_SIZE = VNET_HDR_SIZE + MAX_FRAME_SIZE;

/** ioctl requests on /dev/net/tun (_IOW('T', n, int)). */
export const TUNSETIFF = 0x400454ca;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNSETVNETHDRSZ = 0x400454d8;
/** ifr_flags. */
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_MULTI_QUEUE = 0x0100;
/** TUNSETOFFLOAD bits: which offloads the TAP may hand us (the guest's receive side). */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_UFO = 0x10;
/** struct ifreq: a 16-byte name, then a 24-byte union whose first member is ifr_flags (u16). */
export const IFREQ_SIZE = 40;
export const IFNAMSIZ = 16;

/**
 * Counters of Firecracker's `mmds` metrics group, cumulative; the metrics writer reports deltas.
 * One object is shared by the HTTP handler (token counters) and the network stack (frames).
 */
export class MmdsMetrics {
  /** Frames the stack consumed (they were for MMDS). */
  rx_accepted = 0;
  /** Consumed frames that were dropped as invalid (bad checksum, bad length, wrong port...). */
  rx_accepted_err = 0;
  /** Consumed TCP segments that were unusual (out of order, bad ACK, unexpected flags). */
  rx_accepted_unusual = 0;
  /** Frames too short or malformed to read an Ethernet header from. */
  rx_bad_eth = 0;
  /** GETs that carried a token the authority does not accept. */
  rx_invalid_token = 0;
  /** GETs that carried no token. */
  rx_no_token = 0;
  /** Frames the stack was asked to look at. */
  rx_count = 0;
  /** Bytes of the frames written to the guest. */
  tx_bytes = 0;
  /** Calls to write a frame for the guest. */
  tx_count = 0;
  /** Frames that could not be written (the guest's buffer too small for even the headers). */
  tx_errors = 0;
  /** Frames written to the guest. */
  tx_frames = 0;
  connections_created = 0;
  connections_destroyed = 0;

  /** The counters by Firecracker's field names, for the metrics writer. */
  sample(): Record<string, number> {
    return { ...this } as unknown as Record<string, number>;
  }
}

/**
 * Output that survives a closed pipe (`deadletters list | head`): once the reader is gone (EPIPE), further lines
 * are dropped and `closed` turns true so long loops stop early, instead of an unhandled 'error' event crashing the
 * process with a stack trace.
 */
export interface LineOutput {
  /** Writes one line (a newline is added). */
  line(text: string): void;
  /** True once the reader closed the pipe. */
  readonly closed: boolean;
}

export interface WritableLike {
  write(chunk: string): unknown;
  on?(event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown;
}

export function lineOutput(stream: WritableLike): LineOutput {
  let closed = false;
  stream.on?.('error', (err) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') closed = true;
    else throw err;
  });
  return {
    line(text) {
      if (closed) return;
      try {
        stream.write(`${text}\n`);
      } catch (err) {
        // A synchronous EPIPE (stdout a pipe on some platforms) lands here rather than on 'error'.
        if ((err as NodeJS.ErrnoException).code === 'EPIPE') closed = true;
        else throw err;
      }
    },
    get closed() {
      return closed;
    },
  };
}

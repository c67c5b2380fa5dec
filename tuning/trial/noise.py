"""The start-up chatter of TensorFlow and its libraries, kept off a user's
terminal (plain Python).

TensorFlow's C++ side logs to file descriptor 2 before Python's logging
or `TF_CPP_MIN_LOG_LEVEL` can have a say (`I0000 ... oneDNN custom
operations are on`, `Could not find cuda drivers`, `WARNING: All log
messages before absl::InitializeLog() ...`). `QuietStderr` filters the
descriptor itself, so those lines go while real warnings and errors
(Python's and the libraries') still pass.
"""

import os
import re
import sys
import threading

NOISE = tuple(re.compile(pattern) for pattern in (
    # absl's `I0000 00:00:1796125668.507473   6683 port.cc:153] ...`
    r"^I\d{4} [\d:.]+ +\d+ (port|cudart_stub|cuda_dnn|cuda_fft|cuda_blas|"
    r"cpu_feature_guard|computation_placer|cuda_executor|gpu_device)"
    r"\.cc:\d+\]",
    # CUDA plugins registered twice: harmless, printed on every GPU start.
    r"^E\d{4} [\d:.]+ +\d+ (cuda_dnn|cuda_fft|cuda_blas|computation_placer)"
    r"\.cc:\d+\] (Unable to register|computation placer already)",
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called",
    r"^W\d{4} .*(TF-TRT Warning|Local rendezvous is aborting with status: "
    r"OUT_OF_RANGE)",
    # Each model of an ensemble (or a comparison) predicts once: a new
    # trace per model is what it must do, not a mistake to warn of.
    r"^WARNING:tensorflow:\d+ out of the last \d+ calls to .* triggered "
    r"tf\.function retracing",
))


def is_noise(line: str) -> bool:
    """Whether a line of output is library start-up chatter."""
    return any(pattern.search(line) for pattern in NOISE)


class QuietStderr:
    """Drops `is_noise` lines written to file descriptor 2, from Python or
    from C++, until `stop()` (child processes inherit the filter).

        quiet = QuietStderr()   # before TensorFlow is imported
        ...
        quiet.stop()            # before exec, or at exit
    """

    def __init__(self):
        sys.stderr.flush()
        self._target = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._thread = threading.Thread(target=self._pump, args=(read,),
                                        daemon=True)
        self._thread.start()

    def _pump(self, read: int) -> None:
        with os.fdopen(read, "rb") as pipe:
            for line in pipe:
                if not is_noise(line.decode("utf-8", "replace")):
                    os.write(self._target, line)

    def stop(self) -> None:
        """Puts the real stderr back and passes on what is left."""
        if self._target is None:
            return
        sys.stderr.flush()
        os.dup2(self._target, 2)  # closes this process's end of the pipe
        # Children (Ray's processes) may still hold the pipe: no EOF to wait
        # for, only what was written before now.
        self._thread.join(timeout=0.2)
        os.close(self._target)
        self._target = None

"""Speech input: audio decoding and resampling without torchaudio, and Whisper tiny.en on espeak-ng audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fmkit.errors import DataError
from fmkit.inference.speech import SAMPLE_RATE, list_audio, load_audio, resample


def test_resample_keeps_duration_and_tone() -> None:
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, 8000, SAMPLE_RATE)
    assert len(out) == 16000 and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(out) - 440) < 2
    assert np.array_equal(resample(tone, 16000, 16000), tone)


def test_load_audio_mixes_to_mono_at_16k(tmp_path: Path) -> None:
    import soundfile as sf

    stereo = np.stack([np.full(44100, 0.5), np.full(44100, -0.1)], axis=1).astype(np.float32)
    sf.write(tmp_path / "s.wav", stereo, 44100)
    samples = load_audio(tmp_path / "s.wav")
    assert len(samples) == SAMPLE_RATE and np.allclose(samples, 0.2, atol=1e-3)


def test_bad_audio_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"RIFF....WAVEnot audio")
    with pytest.raises(DataError, match=r"x.wav: cannot decode this audio"):
        load_audio(tmp_path / "x.wav")
    with pytest.raises(DataError, match="audio file not found"):
        load_audio(tmp_path / "none.wav")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        list_audio(tmp_path / "empty")

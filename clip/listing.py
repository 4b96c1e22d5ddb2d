"""``python train.py --list-backbones``: the known CLIP backbones and which of them are on disk (no file is read)."""
from __future__ import annotations

import os

__all__ = ["backbone_lines", "print_backbones"]


def backbone_lines() -> list[str]:
    """The report as lines: OpenAI names, local names, open_clip (model, tag) pairs, hf-hub repos found."""
    from clip import clip, openclip

    lines = []
    root = clip.cache_dir()
    lines.append(f"OpenAI CLIP (--backbone NAME; files in {root}, set ${clip.CACHE_ENV} to move it):")
    for name, url in clip._MODELS.items():
        file_name, _ = clip._url_parts(url)
        path = os.path.join(root, file_name)
        state = f"found    {path}" if os.path.isfile(path) else f"missing  {file_name}"
        lines.append(f"  {name:<16} {state}")
    local = {n: p for n, p in clip._LOCAL_MODELS.items()}
    if local:
        lines.append("Local models (clip.register_local_model):")
        for name, path in local.items():
            lines.append(f"  {name:<16} {'found   ' if os.path.isfile(path) else 'missing '} {path}")

    rows = openclip.known_backbones()
    if not rows:
        lines.append("open_clip models: the open_clip_torch package is not installed (pip install -r requirements.txt)")
        return lines
    supported = [r for r in rows if r["supported"] is None]
    lines.append(
        "open_clip CLIP-family models (--backbone MODEL MODEL.BACKBONE.PRETRAINED TAG, or a weights file as TAG; "
        f"files in the Hugging Face cache {', '.join(openclip.hf_cache_dirs())} or in {root}/ORG/NAME):"
    )
    for r in supported:
        if r["tag"] == "openai" and (r["path"] is None or r["path"] in clip._MODELS):
            state = f"-> OpenAI's file ({r['path'] or 'see above'})"
        else:
            state = f"found    {r['path']}" if r["path"] else "missing"
        lines.append(f"  {r['model']:<28} {r['tag']:<34} {state}")
    n_found = sum(1 for r in supported if r["path"] and r["path"] not in clip._MODELS)
    lines.append(f"  ({len(supported)} tags of {len({r['model'] for r in supported})} models, {n_found} found locally)")
    unsupported: dict[str, str] = {}
    for r in rows:
        if r["supported"] is not None:
            unsupported.setdefault(r["model"], r["supported"])
    if unsupported:
        lines.append(f"open_clip models NOT supported by this CLIP core ({len(unsupported)}; other towers or tokenizers):")
        for model, reason in sorted(unsupported.items()):
            lines.append(f"  {model:<28} {reason}")
    hub = openclip.local_hub_models()
    lines.append("open_clip repos in the Hugging Face cache (--backbone hf-hub:ORG/NAME):")
    if not hub:
        lines.append("  (none)")
    for name, folder in hub:
        lines.append(f"  {name:<50} {folder}")
    return lines


def print_backbones() -> None:
    print("\n".join(backbone_lines()))

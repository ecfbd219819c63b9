"""Operations on a raw corpus or a built dataset: fetch and verify the media, inspect and publish a build."""

"""FOLIO's well-known reference-data UUIDs (mod-inventory-storage reference-data/, every tenant)."""

from __future__ import annotations

from typing import Final

# reference-data/identifier-types/*.json
IDENTIFIER_TYPES: Final[dict[str, str]] = {
    "ISBN": "8261054f-be78-422d-bd51-4ed9f33c3422",
    "Invalid ISBN": "fcca2643-406a-482a-b760-7a7f8aec640e",
    "ISSN": "913300b2-03ed-469a-8179-c1092c991227",
    "Invalid ISSN": "27fd35a6-b8f6-41f2-aa0e-9c663ceb250c",
    "Linking ISSN": "5860f255-a27f-4916-a830-262aa900a6b9",
    "LCCN": "c858e4f2-2b6b-4385-842b-60732ee14abb",
    "Canceled LCCN": "c858e4f2-2b6b-4385-842b-60532ee34abb",
    "OCLC": "439bfbae-75bc-4f74-9fc7-b2a2d47ce3ef",
    "System control number": "7e591197-f335-4afb-bc6d-a6d76ca3bace",
}

# reference-data/instance-types/*.json (RDA content types)
INSTANCE_TYPES: Final[dict[str, str]] = {
    "cartographic dataset": "3363cdb1-e644-446c-82a4-dc3a1d4395b9",
    "cartographic image": "526aa04d-9289-4511-8866-349299592c18",
    "cartographic moving image": "80c0c134-0240-4b63-99d0-6ca755d5f433",
    "cartographic tactile image": "408f82f0-e612-4977-96a1-02076229e312",
    "cartographic tactile three-dimensional form": "e5136fa2-1f19-4581-b005-6e007a940ca8",
    "cartographic three-dimensional form": "2022aa2e-bdde-4dc4-90bc-115e8894b8b3",
    "computer dataset": "df5dddff-9c30-4507-8b82-119ff972d4d7",
    "computer program": "c208544b-9e28-44fa-a13c-f4093d72f798",
    "notated movement": "fbe264b5-69aa-4b7c-a230-3b53337f6440",
    "notated music": "497b5090-3da2-486c-b57f-de5bb3c2e26d",
    "other": "a2c91e87-6bab-44d6-8adb-1fd02481fc4f",
    "performed music": "3be24c14-3551-4180-9292-26a786649c8b",
    "sounds": "9bce18bd-45bf-4949-8fa8-63163e4b7d7f",
    "spoken word": "c7f7446f-4642-4d97-88c9-55bae2ad6c7f",
    "still image": "535e3160-763a-42f9-b0c0-d8ed7df6e2a2",
    "tactile image": "efe2e89b-0525-4535-aa9b-3ff1a131189e",
    "tactile notated movement": "e6a278fb-565a-4296-a7c5-8eb63d259522",
    "tactile notated music": "a67e00fd-dcce-42a9-9e75-fd654ec31e89",
    "tactile text": "8105bd44-e7bd-487e-a8f2-b804a361d92f",
    "tactile three-dimensional form": "82689e16-629d-47f7-94b5-d89736cf11f2",
    "text": "6312d172-f0cf-40f6-b27d-9fa8feaf332f",
    "three-dimensional form": "c1e95c2b-4efc-48cf-9e71-edb622cf0c22",
    "three-dimensional moving image": "3e3039b7-fda0-4ac4-885a-022d457cb99c",
    "two-dimensional moving image": "225faa14-f9bf-4ecd-990d-69433c912434",
    "unspecified": "30fffe0e-e985-4144-b2e2-1e8179bdb41f",
}

# reference-data/holdings-sources/*.json
HOLDINGS_SOURCES: Final[dict[str, str]] = {
    "FOLIO": "f32d531e-df79-46b3-8932-cdd35f7a2264",
    "MARC": "036ee84a-6afd-4c3c-9ad3-4a12ab875f59",
}

# The same records' `code` (RDA content type code, as MARC 336 $b carries it) -> name.
INSTANCE_TYPE_CODES: Final[dict[str, str]] = {
    "crd": "cartographic dataset",
    "cri": "cartographic image",
    "crm": "cartographic moving image",
    "crt": "cartographic tactile image",
    "crn": "cartographic tactile three-dimensional form",
    "crf": "cartographic three-dimensional form",
    "cod": "computer dataset",
    "cop": "computer program",
    "ntv": "notated movement",
    "ntm": "notated music",
    "xxx": "other",
    "prm": "performed music",
    "snd": "sounds",
    "spw": "spoken word",
    "sti": "still image",
    "tci": "tactile image",
    "tcn": "tactile notated movement",
    "tcm": "tactile notated music",
    "tct": "tactile text",
    "tcf": "tactile three-dimensional form",
    "txt": "text",
    "tdf": "three-dimensional form",
    "tdm": "three-dimensional moving image",
    "tdi": "two-dimensional moving image",
    "zzz": "unspecified",
}

"""Deepcoin announcements: the facts of its Zendesk help center (crawler.sources.zendesk
reads it).

Deepcoin's own API (api.deepcoin.com) has no announcement endpoint; its announcements are
the "Important Announcements" category (id 360003875752) of the help center
`https://deepcoin.zendesk.com/hc/en-001` (formerly served as support.deepcoin.online),
read through Zendesk's Help Center API: `GET /api/v2/help_center/en-001/categories/
360003875752/articles.json?sort_by=created_at&sort_order=desc&page=<n>&per_page=100`.
Its locale is `en-001` ("English, world"), not `en-us`. Bodies state times in UTC+8
("(UTC+8)", "(HKT)"): text, never the publication time, which is `created_at` (UTC).
Identity, times, body, paging and errors are Zendesk's: see crawler.sources.zendesk.
"""

from __future__ import annotations

from crawler.sources.zendesk import HelpCenter, help_center

SOURCE = help_center(
    HelpCenter(
        source="deepcoin",
        spider="deepcoin_announcements",
        host="deepcoin.zendesk.com",
        category="360003875752",  # "Important Announcements"
        locales={"en": "en-001"},
    )
)

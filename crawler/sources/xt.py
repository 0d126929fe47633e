"""XT.com announcements: the facts of its Zendesk help center (crawler.sources.zendesk
reads it).

XT's own API (doc.xt.com) has no announcement endpoint; its announcements are the
"Important Announcements" category (id 10304894611993) of the help center
`https://xtsupport.zendesk.com/hc/en-us`, read through Zendesk's Help Center API:
`GET /api/v2/help_center/en-us/categories/10304894611993/articles.json?sort_by=created_at
&sort_order=desc&page=<n>&per_page=100`. Pages `https://xtsupport.zendesk.com/hc/en-us/
articles/<id>-<Title-Slug>`; the locale `zh-cn` exists too. Identity, times, body, paging
and errors are Zendesk's: see crawler.sources.zendesk.
"""

from __future__ import annotations

from crawler.sources.zendesk import HelpCenter, help_center

SOURCE = help_center(
    HelpCenter(
        source="xt",
        spider="xt_announcements",
        host="xtsupport.zendesk.com",
        category="10304894611993",  # "Important Announcements"
        locales={"en": "en-us", "zh": "zh-cn"},
    )
)

"""Tickers and event types, derived from what the archive stores for a version.

`derive` reads only stored fields (source, title, body_text, body_html, tags, category),
so the store at ingest and `annals rederive` later give the same answer for the same
version. Pure functions, precompiled patterns, no database and no Scrapy.

Tickers come from evidence in several strengths (`_valid` says what each admits):
- structured: trade-page links in the HTML (`/en/trade/BNX_USDT`, `/futures/BTCUSDT`),
  cashtag links and `$XYZ`, the tags of sources whose tags are tickers (Gate) or
  coin hashtags (Gate Square);
- strong contexts: "Name (XYZ)", "XYZ/USDT", "XYZUSDT", "list XYZ", "delist XYZ",
  "XYZ perpetual", "launch xyz margin trading", "上线 XYZ", "라벤더(LVDR)";
- weak contexts: "ABC, DEF and GHI", "1,000 XYZ". These never make a ticker of a word
  that is also an English word or an acronym announcements use (FOR, ONE, AM, EEA...);
- in a post (no title), lower-case tickers of market talk ("btc 又新高了", "into sol").
Some tokens found are then left out: quote and prize currencies, the coin staked to take
part, a name in capitals before its ticker ("TRON (TRX)"), an acronym spelt out before
it ("Money Services Business (MSB)").
Some words are never tickers outside structured evidence (times, regions, HTTP verbs,
acronyms, fiat currencies), whatever the context.

The event type comes from title words that plainly say what the announcement does
(delist, list, a competition, a bot or app notice, a network upgrade), then the stored
category (its name or API key, read by `category_event` with the same rules for every
source; every spider's category table agrees with them, tests/test_symbols.py), then
weaker title words; a catch-all category ("Latest News") is read after those. Posts
(no title) are read by their body. The language needs no rules of its own: CJK and
Korean forms are in the same patterns.

How well this does is measured, not guessed: `python -m bench.symbols` against the
labelled set in tests/fixtures/symbols/ (bench/RESULTS.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any, NamedTuple
from urllib.parse import unquote

from archive.records import EVENT_TYPES
from archive.urls import url_parts

# --- vocabularies ---------------------------------------------------------------------------

# Quote currencies: the base of "XYZ/USDT" is the subject; a prize paid in them is not.
STABLE_QUOTES = frozenset(
    "USDT USDC FDUSD BUSD TUSD USDS USDE PYUSD DAI USD1 EURC EURI UST".split()
)
QUOTES = STABLE_QUOTES | frozenset("BTC ETH BNB GT".split())
# Fiat currencies are never symbols (no crypto price to join), whatever the context.
FIAT = frozenset(
    "USD EUR GBP TRY BRL JPY KRW CNY HKD AUD CAD CHF RUB UAH PLN PEN ARS MXN COP CLP "
    "NGN ZAR INR IDR VND THB PHP MYR SGD AED SAR KZT CZK HUF RON SEK NOK DKK NZD TWD".split()
)
# Never a ticker outside structured evidence: times, zones, regions and regulators, HTTP
# verbs, acronyms, token standards (issue 10; the labelling policy, rule 8).
NEVER = FIAT | frozenset(
    "AM PM UTC GMT CET CEST EST EDT PST PDT HKT SGT KST JST WIB WITA WIT ICT IST AEST AEDT BST "
    "MSK EEA EU US USA UK UAE FCA MICA NY NYC HK SG APAC EMEA LATAM ASEAN "
    "SEC CFTC ESMA VARA MAS GET POST PUT DELETE PATCH HEAD HTTP HTTPS URL JSON REST WS "
    "KYC KYB AML APR APY VIP P2P NFT NFTS ETF ETFS AMA OTC FAQ TVL FDV CEO CTO COO API "
    "APIS SDK UI UX APP IOS IP PDF FAQS IEO IDO ICO TGE LP MM PNL ROI "
    "TRC20 BEP20 ERC20 BEP2 SPL EVM TRC10 ERC721 ERC1155 OMNI USDⓈ RWA DAXA MMP RFQ DVOL "
    "KRW1 AUM GMV YOY QOQ VASP CASP MICAR TRC ERC BEP DCA BLVT CPI PPI GDP FOMC NFP PCE "
    "PIX SEPA SWIFT ACH SPEI UPI IMPS FPS FMA MFSA BAFIN AMF CONSOB CNMV CYSEC DFSA FSA "
    "FSCA FINMA FINTRAC SFC OTP TOTP SMS TP SL PIN HODL FUD FOMO ATH ATL DYOR WAGMI NGMI GM "
    "LFG NFA IMO IMHO DXY TWAP VWAP OCO ADL MMR IMR SAFU POR HMAC BRC SRC ARC RPC KOL KOLS "
    "LLM LLMS DAO DAOS DEPIN DEFI GAMEFI P2E TPS MPC SAFT LRT LST AMM KYT GPU CPU".split()
)
# Token standards, whatever the chain: ERC20, BEP20, TRC20, BRC20, SRC20, ERC404, CW20.
_STANDARD = re.compile(r"(?:[A-Z]{1,2}RC|BEP|CW)\d{1,4}")
# The exchanges' own names ("XT Futures", "HTX Earn"): a ticker only in "(XT)" or a link.
EXCHANGES = frozenset(
    "BINANCE OKX BYBIT BITGET KUCOIN GATE HTX MEXC XT BINGX DEEPCOIN KRAKEN BITFINEX "
    "DERIBIT UPBIT BITHUMB COINBASE CRYPTO".split()
)
# The exchanges' own tokens: a prize or a fee paid in them is paid as in a quote currency
# ("VIP Challenge: Win 50,000 CRO"), not the subject.
PLATFORM_TOKENS = frozenset("BNB GT BGB KCS OKB CRO MX HT LEO".split())
PRIZE_CURRENCIES = QUOTES | PLATFORM_TOKENS
# Words and abbreviations that are tickers only where a strong context names the coin.
WORDS = frozenset(
    "A AN AND OR THE FOR TO OF ON IN AT BY IS IT BE AS NEW NOW ALL ONE TWO GAS ME MOVE ID "
    "SUN HOT AI ACE MAGIC TRUMP HIGH EDU UP OUT OFF NOT NO YES BIG TOP KEY FREE WIN "
    "BUY SELL HOLD SPOT MARGIN FUTURES TRADE TRADING LIST LISTING LAUNCH WILL OPEN "
    "CLOSE LIVE NEWS UPDATE NOTICE HOURS DAYS DAY WEEK TIME DEX CEX ALPHA EARN GIFT "
    "BONUS EVENT ZONE PAIRS PAIR TOKEN TOKENS COIN COINS CHAIN NETWORK WALLET BOT "
    "SIMPLE SMART PRO MAX MEGA SUPER PLUS VS COM IO APE".split()
)
# Suffixes that make "24H", "2FA" or "3RD" out of digits: not multiplier tickers.
_DIGIT_WORD = re.compile(
    r"\d+(?:ST|ND|RD|TH|AM|PM|FA|HR|HRS|MIN|MINS|DAY|DAYS|MS|[KMGT]B|[HDWMYKBXSLGT])"
)
# Sources whose own tags are tickers (Gate's list item `tags`) or coin hashtags (Square).
TICKER_TAG_SOURCES = frozenset({"gate", "gate_square"})

# --- patterns -------------------------------------------------------------------------------


def _fast(first: str, pattern: str, *, word: bool = False) -> re.Pattern[str]:
    """`pattern` compiled behind a lookahead for the characters a match can start with:
    the regex engine still tries every position (a leading lookahead gives it no class to
    look for, as a leading class does: _searched), but one whose character is none of them
    fails at the lookahead, before the alternation is tried. `word`: every match starts a
    word (a verb's `\b`), checked first, which fails sooner at the letters inside words."""
    return re.compile(_fast_form(first, pattern, word))


def _fast_form(first: str, pattern: str, word: bool = False) -> str:
    """The text of what _fast compiles."""
    start = r"\b" if word else ""
    return f"{start}(?=[{first}])(?:{pattern})"


def _branches(pattern: str) -> list[str]:
    """The alternatives of `pattern` at its top level ("a|(?:b|c)|[|]" -> "a", "(?:b|c)",
    "[|]")."""
    branches: list[str] = []
    depth, start, i, in_class = 0, 0, 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 1
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and not depth:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    return [*branches, pattern[start:]]


def _searched(first: str, pattern: str, *, word: bool = False) -> re.Pattern[str]:
    """A title rule: `_fast(first, pattern, word=word)` in a form for `search` alone
    (whether the title says it, not where), which finds the same titles with fewer
    instructions: the class of its first characters first, which the regex engine looks
    for before trying the rule at all (it tries a leading lookahead at every position), the
    rule read in a lookahead behind it; and its alternatives that start with "\\b" behind
    one "\\b", where the engine passes over an alternative whose first letter fails at
    once (over one that starts with "\\b" it does not). The same title matches either
    way, as some alternative matches at the same place. Its words (_needed) are read from
    the form of _fast."""
    branches = _branches(pattern)
    worded = [branch.removeprefix(r"\b") for branch in branches if branch.startswith(r"\b")]
    rest = [branch for branch in branches if not branch.startswith(r"\b")]
    if worded:
        rest.insert(0, r"\b(?:" + "|".join(worded) + ")")
    start = r"\b" if word else ""
    compiled = re.compile(f"[{first}](?<={start}(?=(?:{'|'.join(rest)}))(?s:.))")
    _SEARCHED_PARTS[compiled.pattern] = (first, pattern, word)
    return compiled


# What each title rule of _searched was made of, by the rule's text.
_SEARCHED_PARTS: dict[str, tuple[str, str, bool]] = {}


def _needed(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Strings one of which every match of `pattern` holds, read from its parsed form
    ("\\bwill list\\b|上线" -> "will list", "上线"), None when it has none (a class
    or a case-insensitive part in every place). A text that holds none of them is not
    scanned: `in` tests cost less than trying a long alternation at every position."""
    if pattern.flags & re.IGNORECASE:
        return None
    parts = _SEARCHED_PARTS.get(pattern.pattern)
    source = _fast_form(*parts) if parts else pattern.pattern
    words = _needed_in(sre_parse.parse(source, pattern.flags))
    return tuple(sorted(words)) if words else None


def _needed_in(items: Iterable[tuple[Any, Any]]) -> frozenset[str]:
    """What _needed reads from a sequence: its longest run of literals, or a group or
    an alternation whose every branch needs one (the set of longest shortest word)."""
    best: frozenset[str] = frozenset()
    run: list[str] = []

    def better(words: frozenset[str]) -> frozenset[str]:
        if words and (not best or min(map(len, words)) > min(map(len, best))):
            return words
        return best

    for op, av in items:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        if op is sre.AT:
            continue  # "\\b" matches no character: the literals around it are one run
        best, run = better(frozenset(["".join(run)]) if run else frozenset()), []
        if op is sre.BRANCH:
            branches = [_needed_in(branch) for branch in av[1]]
            if all(branches):
                best = better(frozenset().union(*branches))
        elif op is sre.SUBPATTERN:
            _, add_flags, _, body = av
            if not add_flags & sre.SRE_FLAG_IGNORECASE:
                best = better(_needed_in(body))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] >= 1:
            best = better(_needed_in(av[2]))
    return better(frozenset(["".join(run)]) if run else frozenset())


def _halfwidth(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """`pattern`, which starts with a bracket of either width ("[(（]"), for a text with
    no full-width one: it starts with "(" instead, a literal, which the regex engine looks
    for several times faster than a class (it matches where `pattern` does)."""
    if not pattern.pattern.startswith("[(（]"):
        raise ValueError(pattern.pattern)
    return re.compile(r"\(" + pattern.pattern.removeprefix("[(（]"), pattern.flags)


def _later(make: Callable[[], re.Pattern[str]]) -> Callable[[], re.Pattern[str]]:
    """A pattern of a rare path (posts, renames, CJK verbs, one source's codes), compiled
    where it is first used: most of the module's import is compiling its patterns, and a
    crawl of one source in English never reads these."""
    return functools.cache(make)


_TICKER_FIRST = "A-Z0-9"

# A ticker: letters and digits, a letter first or a multiplier first (1INCH, 1000SATS).
_T = r"(?:\d{1,7}[A-Z][A-Z0-9]*|[A-Z][A-Z0-9]*)"
_START = r"(?<![A-Za-z0-9$/_.=:\-])"
# A rule that starts with a ticker starts with these two instead of `_START` and `_T`:
# the ticker's first character where a ticker may start (a class, which the regex engine
# looks for at C speed before trying the rule at all, as it does not for a lookahead),
# then the rest of the ticker, read behind that character (a digit is a multiplier's).
# Each matches where `_START` and `_T` do, trying the same lengths in the same order.
_LEAD = r"[0-9A-Z](?<![A-Za-z0-9$/_.=:\-].)"
_T_REST = r"(?:(?<=[0-9])\d{0,6}[A-Z][A-Z0-9]*|(?<=[A-Z])[A-Z0-9]*)"
# A ticker ends where a word ends, but not inside "USDⓈ-M", "USDT-M" or "XYZ.COM".
_END = r"(?![A-Za-z0-9_\u24b6-\u24e9]|-[A-Z]\b|-(?i:margined|settled)\b|\.[A-Za-z]|:[A-Z]{2})"
_TOKEN = _START + "(" + _T + ")" + _END
_LED_TOKEN = "(" + _LEAD + _T_REST + ")" + _END
_CONTRACT_QUOTES = r"USDTM|USDT|USDCM|USDC|USDM|USD|PERP"


def _by_first(words: Iterable[str]) -> str:
    """An alternation of `words`, longest first, grouped by their first character
    ("U(?:SDT|SDC|SD)|B(?:USD|TC)"): the regex engine tries the one group that starts with
    a character, not every word (it matches what the flat alternation does)."""
    groups: dict[str, list[str]] = {}
    for word in sorted(words, key=lambda w: (-len(w), w)):
        groups.setdefault(word[0], []).append(re.escape(word[1:]))
    return "|".join(
        re.escape(first) + (f"(?:{'|'.join(rests)})" if len(rests) > 1 else rests[0])
        for first, rests in groups.items()
    )


_QUOTE_ALT = _by_first(QUOTES | FIAT)

# "Margin and settlement currency: USD₮ (UST)": a quote named as what a market settles
# in is not its subject.
_SETTLEMENT = re.compile(r"(?i:settle\w*|margin\w*|quoted?|collateral|denominated)\b[^.()]{0,30}$")
# "(XAUt)" too, and "(USDT-TRC20)": a ticker on a token standard.
_PAREN = re.compile(
    r"[(（]\s*(" + _T + r"|[A-Z]{3,}[a-z])(?:-(?:[A-Z]{1,2}RC|BEP|ERC|SPL)\d{0,4})?\s*[)）]"
)
# "Sonic (S)", "큐프로토콜(Q)": a one-letter ticker right after a project's name, in
# any script.
_NAME_LETTER = _later(
    lambda: re.compile(
        r"(?:(?<![A-Za-z0-9])[A-Z][A-Za-z]*[a-z]|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af])"
        r"\s*[(（]([A-Z])[)）]"
    )
)
# "XYZ/USDT", "XYZ_USDT", "XYZ-USDT", Bitfinex's "XYZ:USD" (a colon only unspaced).
_PAIR = re.compile(
    "(" + _LEAD + _T_REST + r")(?:\s?[/_\-]\s?|:)(?:" + _QUOTE_ALT + r")(?![A-Za-z0-9])"
)
# "XYZUSDT" with its base: a quote alone ("USDT") names none, and no contract starts inside
# one (nor inside "-SWAP": every character there stops _START), so it is not matched.
_CONTRACT = re.compile(
    "(" + _LEAD + _T_REST + r")(?:" + _CONTRACT_QUOTES + r")(?:-SWAP)?(?![A-Za-z0-9_\u24b6-\u24e9])"
)
# (The "$" first, then the character before it: a literal first is looked for faster.)
# What a contract's code holds in a window: its quote after a character of its base, each
# found from its literal ("USD" in "XYZUSDT", "PERP" in "XYZPERP"), read where the text has it.
_CONTRACT_CUES = (
    ("USD", re.compile(r"USD(?<=[A-Z0-9]USD)")),
    ("PERP", re.compile(r"PERP(?<=[A-Z0-9]PERP)")),
)
_CASHTAG = re.compile(r"\$(?<![A-Za-z0-9].)(" + _T + r")(?![A-Za-z0-9])")
# "list XYZ", "Delist ABC, DEF and GHI", "上线 XYZ": the verb names what follows, even a
# ticker that is a word (delist GAS).
# "ABC, DEF and GHI", "ABC, DEF, and GHI", "ABC、DEF", "buy ABC or DEF": a list of tickers.
# A member may carry its name in brackets: "List 1000CHEEMS (Cheems) and 1000000BOB"; a
# bracket in capitals is a ticker, and the word before it a name ("Sahara AI (SAHARA)").
_NAME_OF_MEMBER = _END + r"(?:\s?[(（][^()（）a-z]{0,30}[a-z][^()（）]{0,30}[)）])?"
_NAMED_MEMBER = _T + _NAME_OF_MEMBER
_MORE_MEMBERS = (
    r"(?:\s*(?:,(?:\s*(?:and\b|&))?|、|，|\band\b|\bor\b|&|和|及|与|或)\s*" + _NAMED_MEMBER + r")*"
)
_LIST_OF = _NAMED_MEMBER + _MORE_MEMBERS
# A list where a ticker may start (`_START` + `_LIST_OF`), in the form of `_LEAD`.
_LISTED = "(" + _LEAD + _T_REST + _NAME_OF_MEMBER + _MORE_MEMBERS + ")"
_BRACKETED = re.compile(r"[(（][^()（）]*[)）]")
# "Delist Leveraged Tokens ABC", "delist all leveraged tokens, including ABC", "delist all
# spot trading pairs of ABC": what the list is of, between the verb and the list.
_SKIPPED = (
    r"(?:\s+(?i:the|all|new|spot|margin|perpetual|futures|pre-market|trading support for"
    r"|support for|trading for|for|\d+|(?:trading )?pairs of|including"
    r"|(?:leveraged |following |stock )?(?:tokens?|pairs?|contracts?|assets?)"
    r"(?:\s*:|,?(?= including))?))*"
)


def _after_first(*verbs: str) -> str:
    """Verbs matched case-insensitively after their first letter, which the rule has
    matched with a class of the first letters it admits (ASCII only: none of "ſ", "ı",
    "İ", which a case-insensitive "s" or "i" matches); a verb whose letter the class
    lacks never matches, as it never did behind the lookahead of `_fast`. Each verb looks
    back at its first letter behind a class of its second in either case
    ("[Ii](?<=[Ll].)(?i:st)"): the regex engine skips a branch whose first character
    fails a class at once, but enters every look back. Not where the second letter is
    one that a case-insensitive letter matches besides its two cases ("ı", "ſ", "K"
    match "i", "s", "k"), nor one made optional ("as?").
    The verbs with the same second letter share its class ("[Uu](?:(?<=[Ss].)(?i:pport|
    spend)|(?<=[Bb].)(?i:y))"), where the first of them stood: a letter is tried against
    one class a second letter, not one a verb. (No two classes match the same character,
    nor does one match what a verb of the other form starts with, "i" in either case, "ı"
    or "İ": the order of the verbs that can match at a place is kept.)"""
    branches: list[str] = []
    by_second: dict[str, dict[str, list[str]]] = {}
    for verb in verbs:
        first, second = f"[{verb[0].upper()}{verb[0]}]", verb[1:2]
        plain = second.isascii() and second.isalpha() and second.lower() not in "iks"
        if plain and verb[2:3] not in ("?", "*", "+", "{"):
            second = f"[{second.upper()}{second.lower()}]"
            if second not in by_second:
                by_second[second] = {}
                branches.append(second)
            by_second[second].setdefault(first, []).append(verb[2:])
        else:
            branches.append(f"(?<={first})(?i:{verb[1:]})")
    return "(?:" + "|".join(_second_letter(b, by_second.get(b)) for b in branches) + ")"


def _second_letter(branch: str, firsts: dict[str, list[str]] | None) -> str:
    """A branch of _after_first: the verbs after a second letter's class, each group after
    a look back at its first letter."""
    if firsts is None:
        return branch
    after = [f"(?<={first}.)(?i:{'|'.join(rests)})" for first, rests in firsts.items()]
    return branch + (after[0] if len(after) == 1 else "(?:" + "|".join(after) + ")")


def _verbs(first: str, *verbs: str) -> str:
    """Verbs that start a word, their first letter one of `first`'s: the rule starts with
    a class of those letters, which the regex engine looks for at C speed before trying
    the rule at all (it tries a word boundary or a lookahead at every position), then
    looks back for the word's start (no word character before the letter)."""
    return f"[{first}](?<!\\w.)" + _after_first(*verbs)


_NAMING_VERB = re.compile(
    _verbs(
        "LlDdRrAa",
        *("delist(?:s|ed|ing)?", "list(?:s|ed|ing)?", "remov(?:e|es|al of)", "add(?:s|ed|ing)?"),
    )
    + _SKIPPED
    + r"\s+("
    + _LIST_OF
    + ")"
)
_CJK_VERB = _later(
    lambda: re.compile(
        r"(?:上[线線]|上架|下架|下[线線]|首[发發]|暂停|暫停|恢[复復]|支[持援]|[开開]通|包括|推出|[质質]押)\s*("
        + _LIST_OF
        + ")"
    )
)
# "XYZ 将被下架": the list before the verb (apart: "HTX上线WLD" is both ways round).
_CJK_VERB_AFTER = _later(lambda: re.compile(_LISTED + r"\s*(?:要|将|將)?被?(?:下架|上[线線]|上架)"))
# "trading for XYZ", "withdrawals of XYZ", "support XYZ": a ticker, but not a word
# ("Trading for ONE week").
_ACTING_VERB = re.compile(
    _verbs(
        # The first letters of the verbs, each tried at every such letter of a text: none
        # starts with a D or a W. (Nor is R among them: "resum" never matches.)
        "SsOoIiTtBbLlFfAaYy",
        *("support(?:s|ed)?(?: for)?", "open(?:s)?", "introduc(?:e|es|ing)", "to include"),
        *("trading (?:of|for|on)", "subscribe to", "suspend(?:s|ed)?", "resum(?:e|es|ed)"),
        *("swap(?:s)? of", "trade", "buy(?: and sell)?", "sell(?: and buy)?"),
        *("launch(?:es|ed|ing)?", "ap[ry] on", "yield on", "interest on"),
        # Not "0.5% for", "the ratio for": read behind "for" once it matched.
        "for(?<!% for)(?<!ratio for)(?<!ratios for)",
    )
    + _SKIPPED
    + r"\s+("
    + _LIST_OF
    + ")"
)
# "options on ETH", "Innovation Zone Welcomes XYZ": the coin a market is of or a zone lists.
_MARKET_ON = re.compile(
    _verbs("OoFfPpWw", "options on", "futures on", "perpetuals? on", "welcomes?")
    + _SKIPPED
    + r"\s+("
    + _LIST_OF
    + ")"
)
# "Gate Pre-Market Trading: XYZ", "Binance Megadrop: XYZ", "the index components of XYZ":
# the coins a heading or an index names.
_HEADINGS = (
    *"pre-market new listing launchpool launchpad megadrop hodler candydrop jumpstart".split(),
    *"new token new asset new coin".split(),
    *"startup kickstarter gempool poolx alpha components constituents".split(),
)
_HEADED = re.compile(
    _verbs(
        "PpNnLlMmHhCcJjSsKkGgAa",
        *("pre-market trading:", "new listings?:", "launchpool:", "launchpad:", "megadrop:"),
        *("hodler airdrops?:", "candydrop:", "jumpstart:", "startup:", "kickstarter:"),
        *("gempool:", "poolx:", "alpha:", r"new (?:tokens?|assets?|coins?)(?: on [\w.]+)?:"),
        *("components of", "constituents of"),
    )
    + r"\s+("
    + _LIST_OF
    + ")"
)
# "Stake CRO and earn up to 8% APY": the coin of a staking product, unless the text is a
# pool that pays another coin for it ("Stake GT or USDT in Launchpool to share ...").
_STAKE_VERB = re.compile(_verbs("Ss", "stak(?:e|es|ing)") + r"\s+(" + _LIST_OF + ")")
_POOL = re.compile(r"(?i:pool|hodler|airdrop|\bto (?:share|farm|mine)\b)|瓜分|挖|空投")
_POOL_WORDS = ("pool", "hodler", "airdrop", "to share", "to farm", "to mine", "瓜分", "挖", "空投")


def _caseless(text: str) -> bool:
    """Whether a (?i:word) of ASCII letters matches `text` only where its lowered text
    holds the word: so unless the text holds one of the three letters that match an
    ASCII letter but do not lower to it ("ſ" matches (?i:s), "ı" and "İ" (?i:i))."""
    return text.isascii() or not ("ı" in text or "ſ" in text or "İ" in text)


def _lacks(text: str, lowered: str, words: tuple[str, ...]) -> bool:
    """Whether a pattern whose every match holds one of `words` (lower case, matched
    case-insensitively) cannot match `text`, known without running it."""
    return not any(map(lowered.__contains__, words)) and _caseless(text)


def _ends_with(text: str, words: tuple[str, ...], pattern: re.Pattern[str]) -> bool:
    """Whether `pattern`, one of `words` (lower case, matched case-insensitively) and then
    spaces to the end ("(?i:per|of)\\s*$"), matches `text`: tried only where the text, its
    spaces dropped, ends with one (an anchored pattern is tried at every position)."""
    if _caseless(text) and not text.rstrip().lower().endswith(words):
        return False
    return bool(pattern.search(text))


# What a window must hold for a rule to match in it (see _ahead).
_WINDOW_CUES: dict[re.Pattern[str], re.Pattern[str]] = {}
# The same cues for a text with none of the CJK and Korean words (_Text.narrow), where
# `ahead` starts with a space (or a dash, "XYZ-30D"): that character is looked for first,
# then the one before it and `ahead` (a space after a capital or a digit is rarer than a
# capital or a digit). A window that starts right after such a space passes too: that
# only runs a rule that finds nothing there.
_NARROW_CUES: dict[re.Pattern[str], re.Pattern[str]] = {}


def _ahead(listed: str, ahead: str, *, first: str = r"\s") -> re.Pattern[str]:
    """A rule: a list (or a ticker) that `ahead` follows. Most windows have tickers but not
    what must follow them: its cue, the last character of a list (a ticker's or a
    bracket's) and `ahead`, is looked for first, which costs less than reading every
    list in the window. `listed` starts with `_LEAD`; `first`: the characters `ahead`
    starts with in a narrow text."""
    rule = re.compile(listed + "(?=" + ahead + ")")
    _WINDOW_CUES[rule] = re.compile(r"[A-Z0-9)）](?:" + ahead + ")")
    _NARROW_CUES[rule] = re.compile(first + r"(?<=[A-Z0-9)）](?s:.))(?<=(?=" + ahead + r")(?s:.))")
    return rule


# "XYZ Perpetual", "BTC and ETH Quarterly Futures", "XYZ 永续合约": a market of the ticker.
_MARKET_OF = _ahead(
    _LISTED,
    r"(?:\s+(?i:weekly|daily|monthly|quarterly|linear|inverse|"
    r"usdt-m|usdⓈ-m|coin-m))*\s+(?i:perpetuals?|perps?|futures|margin|options|contracts?|"
    r"spot trading|pre-market"
    r"|(?:(?:spot |margin )(?:(?:and|&) (?:spot |margin ))?)?(?:trading )?pairs?)\b"
    r"|\s*(?:永续|现货|合约|交易对)",
)
# "XYZ-30D", "XYZ Flexible Savings", "XYZ Network Upgrade": a product or a chain of it.
_PRODUCT_OF = _ahead(
    _LISTED,
    r"-\d+D\b|\s+(?i:vault|staking|index|mining|"
    r"airdrop|collateral|buy[ -]?back|burn|(?:fixed |flexible )promotion|"
    r"(?:simple |flexible |fixed |locked |on-chain )?(?:earn|savings|products?)|"
    r"(?:trading )?(?:carnival|competition|challenge|campaign|festival))\b"
    r"|\s*(?:活期|定期|스테이킹|에어드랍|에어드롭)",
    first=r"[\s-]",
)
# "GAS Network Upgrade", "withdrawals of GAS": a chain's or a wallet's coin, even a word.
_CHAIN_OF = _ahead(
    _LED_TOKEN, r"\s+(?i:token swap|network upgrade|mainnet|hard fork)\b|\s*网络升级"
)
# "USDT on the OMNI Layer", "USDC on the Base network": a coin on a chain is what a
# notice about it acts on.
_ON_CHAIN = _ahead(
    _LED_TOKEN,
    r"\s+on (?:the )?[A-Z][\w-]*(?: [A-Z][\w-]*)? (?i:layer|network|chain|blockchain)\b",
)
# "delist the following tokens at 10:00 (UTC): ABC, DEF and GHI", "Affected tokens: ABC,
# DEF": the list a notice acts on, after its colon.
_FOLLOWING = re.compile(
    _verbs("FfAa", r"following\b", r"affected\b")
    + r"(?:[^.:\n]|(?<=\d)[:.](?=\d)){0,120}?:\s*("
    + _LIST_OF
    + ")"
)
# "non-compliant stablecoins, including USDT, FDUSD and DAI": the stablecoins a notice
# about stablecoins acts on (quote currencies that are the subject). Not "assets such as
# USDC" (an alternative) nor "350 assets, including BTC" (a reserve report's examples).
_KINDS_INCLUDING = re.compile(
    _verbs("Ss", "stablecoins?") + r",?\s+(?i:including)\s+(" + _LIST_OF + ")"
)
# "MOVE is available for trading!": a market of the ticker opens, even a word's.
_TRADABLE = _ahead(_LISTED, r"\s+(?:is|are)\s+(?:now\s+)?(?i:available for trading)\b")
# "1MBABYDOGE and 1000CAT trading is live": the same, but not a word's ("AI trading is live"
# may be a feature).
_TRADING_LIVE = _ahead(_LISTED, r"\s+(?i:trading)\s+(?:is|are)\s+(?:now\s+)?(?i:live|open)\b")
_WALLET_VERB = re.compile(
    _verbs("DdWw", "deposits?", "withdrawals?") + r"(?i:(?: (?:and|&) (?:deposits?|withdrawals?))?"
    r"(?: (?:amounts?|fees?|limits?|minimums?|networks?))? (?:of|for))"
    r"\s+(" + _LIST_OF + ")"
)
# "TIA deposits and withdrawals", "ETH and ERC-20 token deposits": the coins a wallet
# service acts on, named before it.
_WALLET_OF = _ahead(
    _LISTED,
    r"(?:-\d+)?(?:\s+(?i:tokens?|network|chain))?\s+(?i:deposits?|withdrawals?)\b|\s*입출금",
    first=r"[\s-]",
)
# "ORBX, ZNT 원화 마켓 추가": the assets of a Korean market notice, named before the market
# (the markets themselves are quotes: "BTC, USDT 마켓"); "ORBX 거래지원 종료", "ORBX 거래유의
# 종목", "ORBX 신규 상장": the asset a Korean notice acts on, named before what it does.
_KOREAN_MARKET = re.compile(_LISTED + r"(?=\s*(?:원화\s*|KRW\s*)?마켓)")
_KOREAN_ACT = re.compile(
    _LISTED + r"(?=\s*(?:거래\s*지원|거래\s*유의|투자\s*유의|유의\s*종목|신규\s*상장|상장"
    r"|네트워크\s*업그레이드|메인넷"
    r"|스왑|리브랜딩))"
)
# Deribit, Crypto.com and Bitfinex instruments: BTC-25SEP26, ETH-PERPETUAL, BTC-PERP,
# BTCF0:USTF0.
_INSTRUMENT = re.compile(
    "(" + _LEAD + _T_REST + r")(?:_USDC)?-(?:PERP(?:ETUAL)?\b|\d{1,2}[A-Z]{3}\d{2}\b)"
)
_INSTRUMENT_TAIL = re.compile(r"-(?:PERP(?:ETUAL)?\b|\d{1,2}[A-Z]{3}\d{2}\b)")
# The same names in a lower-case title ("listing of znta_usdc-perpetual", "btc-25sep26"):
# found from their end, then read back to the base.
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_LOWER_INSTRUMENT_END = re.compile(
    r"-(?:perpetual|\d{1,2}(?:" + _MONTHS + r")\d{2})(?![a-z0-9])"  # a literal first: fast
)
_LOWER_INSTRUMENT = re.compile(
    r"(?<![A-Za-z0-9$/_.=:\-])(\d{0,7}[a-z][a-z0-9]{1,11})(?:_usd[ct])?-[a-z0-9]+$"
)
_RATIO_WORDS = ("atio", "ATIO", "ate", "汇率")  # ratio, exchange rate
_RATIO_LOWER = ("ratio", "exchange rate", "汇率")  # what _RATIO_PAIR reads
_RATIO_PAIR = re.compile(
    r"(?<![A-Za-z0-9])\$?(" + _T + r")/\$?(" + _T + r")(?=\s*(?:(?i:ratio|exchange rate)\b|汇率))"
)
# "ETHBTC Perpetual": a ratio contract of two coins.
_RATIO_CONTRACT = re.compile(r"([A-Z]{2,6})(BTC|ETH)")
# (A class first, as in _LEAD: "(?:[/_\-]\s?|:)" would make the engine try every position.)
_PAIR_TAIL = re.compile(r"[/_\-:](?:(?<=[/_\-])\s?|(?<=:))(?:" + _QUOTE_ALT + r")(?![A-Za-z0-9])")
_FUNDING_PERP = _later(lambda: _fast(_TICKER_FIRST, _START + r"([A-Z0-9]{2,15}?)F0:[A-Z]{2,5}F0\b"))
# Kraken Futures instruments: PF_XBTUSD (linear perpetual), PI_ (inverse), FF_/FI_ (fixed
# maturity), a one-letter base too (PF_GUSD).
# (Found from the "_", then read behind it: a literal first is looked for faster.)
_KRAKEN_FUTURE = re.compile(r"_(?<=\b[PF][FI]_)([A-Z0-9]{1,15}?)(?:USDT|USDC|USD|EUR|GBP)\b")
# "launch xyz margin trading": a ticker written in lower case in a trading context.
_LOWER_TRADING = re.compile(
    r"[LlAaMmPpFfSs](?:(?<!\w.)"
    + _after_first("launch(?:es|ed)?", "list(?:s)?", "add(?:s)?")
    + r"\s+([a-z][a-z0-9]{1,14}(?:(?:,\s*|\s+and\s+)[a-z][a-z0-9]{1,14})*)"
    r"\s+(?i:(?:isolated |cross )?margin|perpetual|futures|spot)\b|"
    + _after_first("margin", "perpetual", "futures", "spot")
    + r" (?i:trading) (?i:for)\s+([a-z][a-z0-9]{1,14})(?![\w-]))"
)
# "supports bnSOL and JitoSOL", "list stETH": a wrapped or staked coin's ticker keeps its
# prefix in lower case; a verb that names coins names it too.
# "TSLAx", "USDe", "XAUt": a ticker that ends in one lower-case letter (a tokenised stock's
# x), not a plural's s.
_MIXED = r"(?:[A-Z]?[a-z]{1,4}[A-Z]{3,6}|[A-Z]{2,6}[a-rt-z]|[A-Z][A-Z0-9]+)(?![A-Za-z0-9])"
_MIXED_LIST = _fast(
    "SsCcLlAaTtFf",
    r"(?i:\bsupport(?:s|ed)?|\bconvert|\blist(?:s|ed)?|\badd(?:s|ed)?|\btrade|\bfor)\s+(?-i:("
    + _MIXED
    + r"(?:(?:,\s*|\s+and\s+)"
    + _MIXED
    + r")*))",
)
# "XAUt/USD₮", "stETH/ETH": a pair of a mixed-case ticker; "AAPLx, TSLAx and NVDAx xStocks".
_MIXED_PAIR = re.compile(
    r"(?<![A-Za-z0-9$/_.=:\-])([A-Z]{2,6}[a-rt-z]|[a-z]{1,4}[A-Z]{3,6})(?:\s?/\s?|:)"
    r"(?:" + _QUOTE_ALT + r")(?![A-Za-z0-9])"
)
_MIXED_BEFORE = re.compile(
    r"(?<![A-Za-z0-9])("
    + _MIXED
    + r"(?:(?:,\s*|\s+and\s+)"
    + _MIXED
    + r")*)(?=\s+(?i:xstocks?|tokeni[sz]ed stocks?|stock tokens?|deposits?|withdrawals?)\b)"
)
_MIXED_TOKEN = re.compile(r"[A-Z]?[a-z]{1,4}[A-Z]{3,6}|[A-Z]{2,6}[a-rt-z](?![A-Za-z0-9])")
# (Each alternative starts with a class, which the regex engine tries at once, then looks
# back: an alternative that starts with a look back is entered at every capital.)
_MIXED_HINT = re.compile(r"[A-Z](?:[A-Z](?<=[a-z][A-Z].)[A-Z]|[A-Z][a-rt-z]\b)")
# "Rebranding of FTM to S", "token swap to POL": the new ticker is written as one.
_RENAMED_TO = _later(
    lambda: _fast(
        "RrTtSsMm",
        r"(?i:rebrand(?:ing|s|ed)?|token swap|swap|migration|renam(?:e|es|ing|ed))"
        r"(?:\s+(?i:of|from)\s+(\S+))?\s+(?i:to)\s+([A-Z][A-Z0-9]{0,14})(?![A-Za-z0-9])",
    )
)
# "MATIC to POL token swap", "MATIC (Polygon) to POL Rebranding", "swap from FTM": a
# swap or migration names both its old and its new ticker.
_SWAP_BOTH = _later(
    lambda: _fast(
        "A-Z",
        _START + "(" + _T + r")(?:\s*[(（][^()（）]{1,40}[)）])?\s+(?i:to)\s+(" + _T + r")"
        r"\s+(?i:token\s+|network\s+)?(?i:swap|migration|rebrand\w*|renam\w*|conversion)",
    )
)
# "(ZNT → ZENT)", "티커 변경 (ABC -> XYZ)": a rename written with an arrow.
_SWAP_ARROW = _later(lambda: re.compile(_START + "(" + _T + r")\s*(?:→|->)\s*(" + _T + ")" + _END))
# "ticker change: ORBX becomes ORBT".
_BECOMES = _later(lambda: re.compile(_START + "(" + _T + r") becomes (" + _T + ")" + _END))
_SWAP_FROM = _later(
    lambda: _fast(
        "SsMmRrCc",
        r"(?i:swap|migration|rebrand\w*|conversion)\s+(?i:from)\s+(" + _T + r")(?![A-Za-z0-9])",
    )
)
# "(ARB, OP)": a parenthesis that holds only a list of tickers (a Korean market notice's
# tail) names them as "(ARB)" names one.
_PAREN_LIST = re.compile(r"[(（]\s*(" + _T + r"(?:\s*[,、，]\s*" + _T + r")+)\s*[)）]")
_HALF_PAREN_LIST = _halfwidth(_PAREN_LIST)
# "GRT3L", "BTC5S": a leveraged token's code (base, multiple, long or short) is a code.
# Each shape is found from its rare end first (a digit and L/S, a parenthesised name,
# "USDT Perpetual"), then read back to its ticker: a body costs one fast scan a shape.
_LEVERAGED_END = re.compile(r"[2-5][LS](?![A-Za-z0-9_])")
_LEVERAGED_ENDS = tuple(f"{n}{side}" for n in "2345" for side in "LS")  # `in` costs less
_LEVERAGED = re.compile(_START + r"([A-Z][A-Z0-9]{1,9}[2-5][LS])$")
# "SOPH (Sophon)": a ticker before its project's name; not an acronym before what it
# stands for ("MPC (Multi-Party Computation)"), whose initials spell it.
_NAME_AFTER = re.compile(
    r"[(（]([A-Z](?:[a-z][A-Za-z0-9]*|[A-Z0-9]+(?=[ -]))(?:[ -][A-Za-z][A-Za-z0-9]*){0,3})[)）]"
)
_HALF_NAME_AFTER = _halfwidth(_NAME_AFTER)
_TICKER_BEFORE = re.compile(_START + "(" + _T + r")\s?$")
_LETTER_VERB = re.compile(
    r"(?i:\b(?:de)?list\w*|\bto|\bof|\badds?|\blaunch\w*|\bsupports?)\s+(?i:the\s+)?$"
)
# "HUSDT Perpetual": a one-letter base written as a contract of a market.
_LETTER_CONTRACT = re.compile(
    r"USDT\s+(?i:(?:now )?(?:launched |listed )?(?:for )?(?:perpetual|contract|futures))"
)
_LETTER_BEFORE = re.compile(r"(?<![A-Za-z0-9$/_.=:\-])[A-Z]$")
# What follows a ticker that makes it a margin type ("USDT Perpetual", "USDC contracts").
_MARGIN_TYPE = re.compile(
    r"\s*(?:-M\b|\s(?i:perpetuals?|contracts?|futures|options|-margined|-settled))"
)
# "Binance will list NEO Gas (GAS)": a capital word and then the name's ticker in brackets
# after it, the ticker is part of a name ("List AAPLX and TSLAX Stock Tokens" is not).
_NAME_GOES_ON = re.compile(r"\s+[A-Z][a-z][\w.'& -]{0,30}?[(（]")
# Weak: "ABC, DEF and GHI" and amounts "1,000,000 XYZ" (never after a time's colon).
_LIST = re.compile(
    "("
    + _LEAD
    + _T_REST
    + _END
    + r"(?:\s*,\s*"
    + _T
    + _END
    + r")*,?\s+(?:and|&)\s+"
    + _T
    + _END
    + ")"
)
_AMOUNT = re.compile(  # ("[\d,.]*+": what follows is none of them, nothing to give back)
    r"[0-9](?<![\d:.,][0-9])[\d,.]*+(?:\s*(?:[KkMmBb]|million|billion))?\s+" + _TOKEN
)
# "Share 400,000 MOVE", "瓜分 100,000 XYZ": the prize of a campaign names its coin.
_PRIZE = re.compile(r"(?:(?i:share|win|earn|grab|split)(?:\s+(?i:up to|a|an|over))?|瓜分)\s+$")
_PRIZE_ENDS = ("share", "win", "earn", "grab", "split", "up to", "a", "an", "over", "瓜分")
# "One unit represents 1,000 SATS", "quoted per 1,000 PEPE": a unit, not the subject.
_UNIT = re.compile(r"(?i:represents?|per|equals?|is|of|=|×|x)\s*$")
_UNIT_ENDS = ("represent", "represents", "per", "equal", "equals", "is", "of", "=", "×", "x")
_IN_LIST = re.compile(_T + _END)
# "Stake GT to share", "Lock BGB to mine", "Earn SOLV with retroactive BNB Simple Earn
# subscriptions", "Farm AI by staking BNB": the coin taken to take part is not the subject.
_HELD = r"(?P<held>\$?" + _T + r"(?:\s*(?:,|/|\band\b|\bor\b|&)\s*\$?" + _T + r")*)"
_REWARDS = ("share", "mine", "earn", "win", "get", "receive", "farm", "grab")
_REWARD_AMOUNT = (
    r"(?:\s+(?i:up to|a|an|over))?\s+(?:[\d,.]+\s*(?:[KkMmBb]\b)?\s*)?\$?(?P<prize>" + _T + r")"
)
_REWARD = "(?i:" + "|".join(_REWARDS) + ")" + _REWARD_AMOUNT
_PARTICIPATION = re.compile(
    _verbs(
        "SsLlHhDdCc",
        *("stake", "staking", "lock", "locking", "hold", "holding", "subscribe", "subscribing"),
        *("deposit", "commit"),
    )
    + r"\s+"
    + _HELD
    + r"\s+(?i:to|and|for)\s+"
    + _REWARD
)
_PARTICIPATION_BY = re.compile(
    _verbs("SsMmEeWwGgRrFf", *_REWARDS) + _REWARD_AMOUNT + r"\s+(?i:with|by|via|for)\s+"
    r"(?:(?i:retroactive|staking|holding|locking|subscribing to|subscribing|depositing|"
    r"committing|your)\s+)*" + _HELD
)
# "Trade BTC Perpetuals to Share 100,000 CRO", "Trade SUN to share 500,000 USDT": the coin
# traded is the subject, the prize is not.
_TRADE_TO_WIN = re.compile(
    _verbs("Tt", "trade")
    + r"\s+"
    + _HELD
    + r"(?:\s+(?i:perpetuals?|futures|spot|contracts?|pairs?))?\s+(?i:to)\s+"
    + _REWARD
)
# "Share 60,000 USDT in KAITO", "win $50,000 worth of XYZ": a prize's value in a quote
# currency, paid in the coin the campaign is about.
_PRIZE_IN = re.compile(
    _verbs("SsWw", "share", "win")
    + r"\s+(?i:up to\s+)?(?:\$[\d,.]+|[\d,.]+\s*(?:USDT|USDC|USD))\s*[KkMm]?"
    r"\s+(?i:in|worth of)\s+(" + _T + r")(?![A-Za-z0-9])"
)
# An API example ("symbol=BTCUSDT", "e.g. BTCUSDT") is not the subject.
_EXAMPLE_AFTER = re.compile(r"[\w-]*\s+examples?\b")  # "BTC-USD-SWAP examples"
_EXAMPLE = re.compile(r"(?i:e\.g\.|for example|such as|example:)\s*[`'\"]?$")
_EXAMPLE_WORDS = ("e.g.", "example", "such as")

# Trade-page links: /trade/BNX_USDT, /futures/BTCUSDT, /trade/spot/BTC/USDT, /trade-spot/btc-usdt.
# (A class first, looked for at C speed: a case-insensitive "h" makes the engine try every
# position of the HTML.)
_HREF = re.compile(r"""[Hh](?i:ref)\s*=\s*["']([^"']+)["']""")
_TRADE_SEGMENT = re.compile(
    r"^(?:trade|trade-spot|trade-swap|trade-futures|futures|spot|margin|swap|perpetual|"
    r"contract|exchange|markets?|price)$",
    re.I,
)
_LINK_PAIR = re.compile(
    r"(?<![a-z0-9])([a-z0-9]{1,20}?)[_\-/]?("
    + _QUOTE_ALT
    + r"|USDTM|PERP)(?:[_\-](?:swap|perp|perpetual))?$",
    re.I,
)
_CASHTAG_ANCHOR = re.compile(r"<a\b[^>]*>\s*\$([A-Za-z][A-Za-z0-9]{0,14})\s*</a>", re.I)
_CASHTAG_CLASS = re.compile(
    r"<a\b[^>]*class\s*=\s*[\"'][^\"']*cashtag[^\"']*[\"'][^>]*>\s*\$?([A-Za-z0-9]{2,15})\s*</a>",
    re.I,
)
_TAG_TICKER = re.compile(_T)

# --- tickers --------------------------------------------------------------------------------


def _base(token: str, inverse: bool = True) -> str:
    """'BLIPUSDT' -> 'BLIP', 'XBTUSDTM' -> 'XBT', 'SOLUSDM' -> 'SOL' (coin-margined),
    'BTC-USDT-SWAP' -> 'BTC': a contract
    stands for its base asset; a multiplier prefix is kept (1000PEPEUSDT -> 1000PEPE).
    A USD-quoted (inverse) contract only where `inverse`: in a text about no derivative,
    'RLUSD' and 'PYUSD' are coins of their own."""
    if token in QUOTES or ("USD" not in token and not token.endswith("PERP")):
        return token
    for quote in ("USDTM", "USDT", "USDCM", "USDC", "USDM", "PERP", "USD"):
        # "HUSDT": a one-letter base before USDT (never "AUSD", a coin of its own).
        shortest = len(quote) + (1 if quote == "USDT" else 2)
        if not inverse and quote in _INVERSE_QUOTES:
            continue
        if token.endswith(quote) and len(token) >= shortest:
            return token[: -len(quote)]
    return token


_INVERSE_QUOTES = frozenset({"USD", "USDM"})
# Words of a text about derivatives (lower-cased), where "XYZUSD" is a contract.
_DERIVATIVE_WORDS = tuple(
    "perp futures contract swap inverse margined delivery expir option 永续 合约 선물".split()
)


# Evidence strengths: what each admits (see _valid). CODED: written as a market code
# (a pair, a contract, an instrument), which no digit word ("24H", "5G") is.
STRUCTURED, CODED, NAMED, LISTED, ACTED, WEAK = 5, 4, 3, 2, 1, 0


@functools.lru_cache(maxsize=4096)
def _valid(token: str, strength: int) -> bool:
    """Whether `token` may be a ticker found with evidence of `strength`: fiat never;
    the NEVER words only from structured evidence; a digit word only as a code; an
    exchange's name only where it is written as a ticker ("(HTX)", "HTX/USDT"); a word
    only where a listing names it. (Remembered: the same few tokens, "USDT", "UTC", come
    up in nearly every text, and a look-up costs a sixth of the tests.)"""
    # Most tokens are letters only: counted without a generator.
    letters = len(token) if token.isalpha() else sum(c.isalpha() for c in token)
    if not 2 <= len(token) <= 15 or letters == 0:
        return strength >= STRUCTURED and token.isalpha()  # "Rebranding of FTM to S"
    if letters < 2 and not (strength >= NAMED and token[0].isdigit()):  # "(2Z)", not "24H"
        return False
    if token in FIAT:
        return False
    if strength >= STRUCTURED:
        return True
    if token[-1].isdigit() and _STANDARD.fullmatch(token):
        return False
    if strength >= CODED:
        return True  # "0G/USDT", "OMNI/USDT", "JSTUSDT": a market's code names its coin
    if token[0].isdigit() and _DIGIT_WORD.fullmatch(token):
        return False  # "(24H)"
    if token in NEVER:
        return False
    if token in EXCHANGES:
        return strength >= NAMED
    return strength >= LISTED or token not in WORDS


class _Found:
    """Tickers in order of first appearance, with the strongest evidence seen for each."""

    def __init__(self, texts: Iterable[str | None] = (), title: str | None = None) -> None:
        self.texts = [text for text in texts if text]
        self.title = title
        self._inverse: bool | None = None
        self.at: dict[str, int] = {}
        self.weak: dict[str, int] = {}
        self.excluded: set[str] = set()
        self.coded: set[str] = set()  # found as a market's code (a pair, a contract)
        self.names: set[str] = set()  # written before a ticker in brackets: "TRON (TRX)"
        self.bitfinex = False  # Bitfinex's own symbols are read ("tZNT:UST", "fZNT")

    def add(
        self, token: str, pos: int, strength: int, quotes: frozenset[str] = frozenset()
    ) -> None:
        """`quotes`: the quote currencies that are not the subject in this context.
        Weak evidence ("ABC, DEF and GHI", "1,000 XYZ") never makes a ticker alone: it
        only says where a ticker found by stronger evidence first appears."""
        token = token.upper()
        if "USD" in token or token.endswith("PERP"):
            token = _base(token, not token.endswith(("USD", "USDM")) or self.inverse)
        if token in quotes or not _valid(token, strength):
            return
        seen = self.weak if strength == WEAK else self.at
        if pos < seen.get(token, pos + 1):
            seen[token] = pos
        if strength == CODED:
            self.coded.add(token)

    def _name(self, token: str) -> bool:
        """ "TRON (TRX)", "OFFICIAL TRUMP (TRUMP)": a word in capitals before another
        ticker in brackets is that coin's name, unless a market's code names it too."""
        return token in self.names and token not in self.coded

    @property
    def delisting(self) -> bool:
        """A delisting notice: a swap its body names is why, not what it delists (rule
        11). Read only for a body that names a swap."""
        return self.title is not None and bool(_DELISTING.search(self.title.lower()))

    @property
    def inverse(self) -> bool:
        """Whether "XYZUSD" is a contract here: the texts are about derivatives (see
        _base). Read only when such a token turns up."""
        if self._inverse is None:
            lowered = [text.lower() for text in self.texts]
            self._inverse = any(w in text for text in lowered for w in _DERIVATIVE_WORDS)
        return self._inverse

    def _alias(self, token: str) -> bool:
        """ "the SPX6900 perpetual contract SPXUSDT": a name that is a contract's base and
        digits is that contract's project, not a second asset (1000PEPE is a code itself)."""
        if not token[-1].isdigit() or token in self.coded:
            return False
        stem = token.rstrip("0123456789")
        return stem != token and stem in self.coded

    def ordered(self) -> list[str]:
        at, weak = self.at, self.weak
        first = {
            t: min(p, weak.get(t, p))
            for t, p in at.items()
            if t not in self.excluded and not self._alias(t) and not self._name(t)
        }
        return sorted(first, key=first.__getitem__)


# Where a ticker could be: context rules run only on windows around these (most prose
# has none), so a long lower-case body costs one fast scan.
# "Sonic (S)", "2Z", and one letter in a list or before a name ("W, H and M", "G (Gravity)").
# (Its first character matched by a class, then each kind read behind it, as in _LEAD; a
# kind that reads a character more matches it by a class first, then looks back: the
# regex engine passes over an alternative whose first class fails at once, but enters
# every look back, and most candidates are digits among digits.)
_CANDIDATE = re.compile(
    r"[A-Z0-9(（](?:[A-Z0-9](?<=[A-Z].)[A-Z0-9]*|[A-Z](?<=[0-9].)|[A-Z](?<=[(（].)[)）]"
    r"|(?<=[A-Z])(?<![A-Za-z0-9].)(?=,|\s(?:and|&)\s|\s?[(（]))"
)
_BEFORE, _AFTER = 80, 60  # characters of context a rule reads around a ticker


def _windows(text: str) -> list[tuple[int, int]]:
    """Merged spans of text around every ticker-like token, cut at spaces (a short text,
    a title, with any such token is one span)."""
    size = len(text)
    if size <= _BEFORE + _AFTER:
        return [(0, size)] if _CANDIDATE.search(text) else []
    spans: list[tuple[int, int]] = []
    first, stop = -1, 0  # the open span's start and its last candidate's end
    for m in _CANDIDATE.finditer(text):
        start = m.start() - _BEFORE
        if first >= 0:
            # The open span ends at the first space at or after `stop + _AFTER` (the
            # furthest of its candidates' ends: they come in order). A ticker-rich text
            # has most candidates that close: that space is looked for only for one
            # that starts further on, and once for the span where it closes.
            if start <= stop + _AFTER:
                stop = m.end()
                continue
            last = text.find(" ", min(size, stop + _AFTER))
            last = size if last < 0 else last
            if start <= last:
                stop = m.end()
                continue
            spans.append((first, last))
        first = text.rfind(" ", 0, start) + 1 if start > 0 else 0
        stop = m.end()
    if first >= 0:
        last = text.find(" ", min(size, stop + _AFTER))
        spans.append((first, size if last < 0 else last))
    return spans


class _Text:
    """A text with what the window rules ask of all of it, read once for all its windows:
    the rules a text's words let match, and which families to look for at all."""

    def __init__(self, text: str, lowered: str) -> None:
        self.text = text
        # A rule whose words the text lacks cannot match: it is not run at all. A text
        # with none of the CJK or Korean characters of the words (most texts that are not
        # ASCII only for a curly quote or a dash) can hold only their ASCII ones.
        narrow = text.isascii() or not _WIDE.search(text)
        caseless = _caseless(text)
        # map() with the text's own `in`: the same test as a generator, without its frames.
        holds = lowered.__contains__
        every = (_ASCII_CUED if narrow else _CASELESS_CUED) if caseless else _CONTEXT_CUED
        slot = 6 if narrow else 5  # a rule's narrow cue or its window cue (_cued)
        self.market_cue = _NARROW_MARKET_CUE if narrow else _MARKET_CUE
        self.rules = [
            (rule[0], rule[1], rule[2], rule[slot])
            for rule in every
            if any(map(holds, rule[3])) or (rule[4] is not None and rule[4].search(text))
        ]
        rewarded = any(map(holds, _REWARDS))  # read once for the rules that ask
        if caseless and not rewarded:
            self.takes_part = []  # each names a reward or a prize's verb (_PARTICIPATIONS)
        else:
            self.takes_part = [
                pattern
                for pattern, words, also in _PARTICIPATIONS
                if (rewarded if words is _REWARDS else any(map(holds, words)))
                and (
                    not (caseless and also)
                    or (rewarded if also is _REWARDS else any(map(holds, also)))
                )
            ]
        # A naming verb's words (_NAMING_VERB), the quotes a contract ends in (_CONTRACT):
        # a text with none is not scanned for them.
        self.naming = not _lacks(text, lowered, ("list", "remov", "add"))
        self.contracts = [cue for word, cue in _CONTRACT_CUES if word in text]
        self.ratios = (
            "/" in text
            and any(map(text.__contains__, _RATIO_WORDS))
            and not _lacks(text, lowered, _RATIO_LOWER)
        )
        # The bracket rules start with a literal where the text has only "(" (_halfwidth).
        if "（" in text:
            self.paren, self.one_letter = _PAREN, _ONE_LETTER
        else:
            self.paren, self.one_letter = _HALF_PAREN, _HALF_ONE_LETTER
        self.funding = "F0:" in text
        self.kraken = "_" in text
        self.cashtags = "$" in text
        self.cjk_verbs = not narrow and bool(_ANY_CJK_VERB().search(text))
        self.staking = "stak" in lowered and (
            _lacks(text, lowered, _POOL_WORDS) or not _POOL.search(text)
        )
        self.markets = any(map(holds, _ASCII_MARKET_WORDS if narrow else _MARKET_WORDS))
        self.remains = self.markets and not _lacks(text, lowered, _UNAFFECTED_WORDS)


def _scan(text: str, offset: int, found: _Found) -> None:
    """Every context rule over one text (the title or the body)."""
    lowered = text.lower()
    windows = _windows(text)
    if windows:
        read = _Text(text, lowered)
        for start, end in windows:
            _scan_written(read, offset, found, start, end)
            _scan_codes(read, offset, found, start, end)
            _scan_contexts(read, offset, found, start, end)
            _scan_campaigns(read, offset, found, start, end)
    if _lower_trading(text, lowered):
        for m in _LOWER_TRADING.finditer(text):
            for word in _LOWER_LIST.split(m[1] or m[2]):
                if word.lower() not in _LOWER_WORDS:
                    found.add(word, offset + m.start(), LISTED)
    if _MIXED_HINT.search(text):
        _scan_mixed(text, offset, found)
    _scan_lower_instruments(text, offset, found)
    _scan_renamed(text, offset, found)
    if any(map(lowered.__contains__, _RENAME_WORDS)) and not (found.delisting and offset):
        for m in _RENAMED_TO().finditer(text):
            if m[2] not in NEVER and m[2] not in WORDS:
                found.add(m[2], offset + m.start(2), STRUCTURED)
            if m[1] and _TAG_TICKER.fullmatch(m[1]):
                found.add(m[1], offset + m.start(1), LISTED)  # "of MATIC to POL"
        _scan_swaps(text, offset, found)
    if windows:
        _scan_shapes(text, offset, found)


def _lower_trading(text: str, lowered: str) -> bool:
    """Whether _LOWER_TRADING is worth running: the text has a verb and a market ("launch
    xyz margin trading") or "trading for" ("futures trading for xyz")."""
    if not ("launch" in lowered or "list" in lowered or "add" in lowered or "trading" in lowered):
        return False
    return (
        ("trading for" in lowered and any(map(lowered.__contains__, _LOWER_MARKET_TRADING)))
        or (
            ("launch" in lowered or "list" in lowered or "add" in lowered)
            and any(map(lowered.__contains__, _LOWER_MARKETS))
        )
        or not _caseless(text)
    )


_LOWER_MARKETS = ("margin", "perpetual", "futures", "spot")
_LOWER_MARKET_TRADING = tuple(f"{market} trading for" for market in _LOWER_MARKETS)


def _scan_renamed(text: str, offset: int, found: _Found) -> None:
    """Both tickers of a rename written "ORBX becomes ORBT" or "(ZNT → ZENT)" (an arrow
    in a text about a rename: not "KRW → USDT 마켓 이전")."""
    for hint, pattern in (("becomes", _BECOMES), ("→", _SWAP_ARROW), ("->", _SWAP_ARROW)):
        if hint in text and (
            pattern is _BECOMES or any(word in text.lower() for word in _ARROW_WORDS)
        ):
            for m in pattern().finditer(text):
                found.add(m[1], offset + m.start(1), LISTED)
                found.add(m[2], offset + m.start(2), LISTED)


def _scan_lower_instruments(text: str, offset: int, found: _Found) -> None:
    """Instrument names in a lower-case title: "znta_usdc-perpetual", "btc-25sep26"."""
    if "-" not in text:
        return
    for m in _LOWER_INSTRUMENT_END.finditer(text):
        t = _LOWER_INSTRUMENT.search(text, max(0, m.start() - 20), m.end())
        if t and t[1] not in _LOWER_WORDS and t[1] not in _NOT_BASES:
            found.add(t[1], offset + t.start(1), CODED, STABLE_QUOTES)  # "usdc-perpetual"


def _scan_swaps(text: str, offset: int, found: _Found) -> None:
    """Both sides of a swap: "KORV to ORBT token swap", "swap from KORV"."""
    for m in _SWAP_BOTH().finditer(text):
        found.add(m[1], offset + m.start(1), LISTED)
        # "FTM to S Token Swap": a capital letter a swap names is its new ticker.
        found.add(m[2], offset + m.start(2), STRUCTURED if len(m[2]) == 1 else LISTED)
    for m in _SWAP_FROM().finditer(text):
        found.add(m[1], offset + m.start(1), LISTED)


def _scan_shapes(text: str, offset: int, found: _Found) -> None:
    """Tickers written in a shape that names them: "(ARB, OP)", "GRT3L", "SOPH (Sophon)",
    "HUSDT Perpetual"."""
    fullwidth = "（" in text
    if fullwidth or "(" in text:
        paren_list, name_after = (
            (_PAREN_LIST, _NAME_AFTER) if fullwidth else (_HALF_PAREN_LIST, _HALF_NAME_AFTER)
        )
        for m in paren_list.finditer(text):
            for member in _IN_LIST.finditer(m[1]):
                found.add(member[0], offset + m.start(1) + member.start(), NAMED)
        for m in name_after.finditer(text):
            t = _TICKER_BEFORE.search(text, max(0, m.start() - 17), m.start())
            if t:
                initials = "".join(w[0] for w in re.split(r"[ -]", m[1])).upper()
                spelt = t[1].startswith(initials) or initials.startswith(t[1])
                if len(t[1]) == 1 or len(initials) < 2 or not spelt:
                    # "list C (Chainbase)", "swap of EOS to A (Vaulta)": a letter a verb names
                    letter = len(t[1]) == 1 and _LETTER_VERB.search(
                        text, max(0, t.start() - 20), t.start()
                    )
                    found.add(t[1], offset + t.start(1), STRUCTURED if letter else ACTED)
    if any(map(text.__contains__, _LEVERAGED_ENDS)):
        for m in _LEVERAGED_END.finditer(text):
            t = _LEVERAGED.search(text, max(0, m.start() - 11), m.end())
            if t:
                found.add(t[1], offset + t.start(1), CODED)
    if "USDT" in text:
        for m in _LETTER_CONTRACT.finditer(text):
            t = _LETTER_BEFORE.search(text, max(0, m.start() - 1), m.start())
            if t:
                found.add(t[0], offset + t.start(), STRUCTURED)


_RENAME_WORDS = ("rebrand", "swap", "migration", "renam")
_ARROW_WORDS = ("rebrand", "renam", "ticker", "swap", "migration", "리브랜딩", "티커", "스왑")
_NOT_BASES = frozenset("non semi quasi".split())  # "non-perpetual"


def _scan_mixed(text: str, offset: int, found: _Found) -> None:
    """Mixed-case tickers ("bnSOL", "JitoSOL") in a list a naming verb names, in a pair
    ("XAUt/USD") or before what they are ("TSLAx and NVDAx xStocks"). Not Bitfinex's
    own symbols ("tZNT:UST", "fZNT": _scan_bitfinex)."""
    for pattern in (_MIXED_LIST, _MIXED_BEFORE):
        for m in pattern.finditer(text):
            for t in _MIXED_TOKEN.finditer(m[1]):
                if (t.start() == 0 or not m[1][t.start() - 1].isalnum()) and not (
                    found.bitfinex and _BITFINEX_PREFIXED.match(t[0])
                ):
                    found.add(t[0], offset + m.start(1) + t.start(), LISTED)
    for m in _MIXED_PAIR.finditer(text):
        if not (found.bitfinex and _BITFINEX_PREFIXED.match(m[1])):
            found.add(m[1], offset + m.start(1), CODED)


# Bitfinex's API symbols: "tARBR:USD", "tZNTUSD", "tBTCF0:USTF0" (trading), "fZNT"
# (a funding book): they stand for their base, except as a request's example
# ("symbols=tBTCUSD,fUST").
_BITFINEX_PREFIXED = re.compile(r"[tf][A-Z]")
_BITFINEX_SYMBOL = _later(
    lambda: _fast(
        "tf",
        r"(?<![A-Za-z0-9$/_.=:\-])[tf]([A-Z][A-Z0-9]{1,15})(?::([A-Z][A-Z0-9]{1,7}))?(?![A-Za-z0-9:])",
    )
)
_EXAMPLE_NEAR = _later(
    lambda: re.compile(r"(?i:e\.g\.|for example|such as|examples?:)[^.;:]{0,40}$")
)
_BITFINEX_QUOTES = ("USD", "UST", "EUR", "GBP", "JPY", "BTC", "ETH", "TRY", "MXN")


# Upbit's and Bithumb's market codes name the quote first: "KRW-ORBX", "BTC-ORBX".
_QUOTE_FIRST = _later(
    lambda: re.compile(
        r"(?<![A-Za-z0-9$/_.=:\-])(?:KRW|BTC|USDT|IDR|SGD|THB)-(" + _T + r")(?![A-Za-z0-9_-])"
    )
)


def _scan_quote_first(text: str, offset: int, found: _Found) -> None:
    if "-" not in text:
        return
    for m in _QUOTE_FIRST().finditer(text):
        run = text[text.rfind(" ", 0, m.start()) + 1 : m.start()]
        if "=" not in run and "," not in run and not _is_example(text, m.start(), m.end()):
            found.add(m[1], offset + m.start(1), CODED)


def _scan_bitfinex(text: str, offset: int, found: _Found) -> None:
    for m in _BITFINEX_SYMBOL().finditer(text):
        run = text[text.rfind(" ", 0, m.start()) + 1 : m.start()]
        if "=" in run or "/" in run or "," in run or _is_example(text, m.start(), m.end()):
            continue
        if _EXAMPLE_NEAR().search(text, max(0, m.start() - 50), m.start()):
            continue  # "for example tBTCUSD or fUST"
        base = m[1]
        if m[2] is None and m[0][0] == "t":
            base = next(
                (base[: -len(q)] for q in _BITFINEX_QUOTES if base.endswith(q) and len(base) > 4),
                base,
            )
        base = base.removesuffix("F0") if m[2] else base
        found.add(base, offset + m.start(1), CODED)


# "OKX to list Story (IP)": a project's name a listing verb names, its ticker in brackets.
_LISTED_NAME = re.compile(
    r"(?i:\b(?:de)?list\w*|\blaunch\w*|\badds?|\bsupports?|\btrade)\s+(?:the\s+)?"
    r"((?:[A-Z][\w.'&-]*\s?){1,4})$"
)
_LISTED_NAME_WORDS = ("list", "launch", "add", "support", "trade")


def _listed_name(text: str, start: int) -> bool:
    """Whether a listing verb names the project before a bracket at `start` (_LISTED_NAME),
    looked for only where the words before it hold a verb ("(UTC)" after a time does not)."""
    begin = max(0, start - 60)
    words = text[begin:start]
    if _lacks(words, words.lower(), _LISTED_NAME_WORDS):
        return False
    return bool(_LISTED_NAME.search(text, begin, start))


_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_MINOR_WORDS = frozenset("of the and for & de".split())
# A name that ends in one of these is a coin's, whatever its initials ("Trust Wallet Token").
_COIN_NOUNS = frozenset("token coin protocol network chain finance dao cash dollar swap".split())


_MARKET_TALK = re.compile(
    r"(?i:list|trad|token|pairs?\b|perpetual|futures|margin|spot|earn|convert|upgrade|airdrop"
    r"|stak|swap|mainnet|withdraw|launchpool)"
    r"|上线|上架|상장"
)


def _spelt_out(text: str, start: int, ticker: str) -> bool:
    """Whether the words before a bracket at `start` are what the acronym in it stands for
    ("Money Services Business (MSB)", "special purpose depository institution (SPDI)"):
    their initials spell it, and they are not a coin's name: "Basic Attention Token",
    or a name in capitals in a text about markets, Earn, staking, swaps or upgrades
    ("Magic Eden (ME)", "Ethereum Name Service (ENS) Network Upgrade")."""
    if len(ticker) < 2:
        return False
    before = text[max(0, start - 12 * len(ticker)) : start].split()
    if not before or before[-1][0].upper() != ticker[-1].upper():
        return False  # the last word's initial is not the acronym's last letter
    words = _NAME_WORD.findall(text, max(0, start - 12 * len(ticker)), start)
    if len(words) < 2 or words[-1].lower() in _COIN_NOUNS:
        return False
    for kept in (words, [w for w in words if w.lower() not in _MINOR_WORDS]):
        tail = kept[-len(ticker) :]
        if len(tail) == len(ticker) and "".join(w[0] for w in tail).upper() == ticker.upper():
            return tail[0].islower() or not _MARKET_TALK.search(text)
    return False


# The words in capitals right before a bracket ("OFFICIAL TRUMP (").
_CAPITAL_NAME = re.compile(r"(?:(?<![A-Za-z0-9$])[A-Z][A-Z0-9]{2,}\s+)+$")


def _note_names(text: str, m: re.Match[str], found: _Found) -> None:
    """The words in capitals before a bracketed ticker that is not theirs ("TRON (TRX)")
    are a name; a quote currency or a token standard in brackets is a network, not a
    ticker ("USDT (TRC20)")."""
    ticker, end = m[1], m.start()
    while end and text[end - 1] == " ":
        end -= 1
    if not end or not text[end - 1].isupper() or ticker in NEVER or _STANDARD.fullmatch(ticker):
        return  # no capital right before the bracket
    name = _CAPITAL_NAME.search(text, max(0, m.start() - 40), m.start())
    if name:
        for word in name[0].split():
            if word != ticker and word not in QUOTES:
                found.names.add(word)


def _scan_brackets(read: _Text, offset: int, found: _Found, a: int, b: int) -> None:
    """Tickers in brackets: "(XYZ)", "Story (IP)"."""
    text = read.text
    for m in read.paren.finditer(text, a, b):
        # A listed project's ticker is a ticker even when it is an acronym ("Story (IP)");
        # another acronym ("(UTC)") is none, names nothing and is read no further.
        named = m[1] in NEVER
        if named and not _listed_name(text, m.start()):
            continue
        if m[1] in QUOTES and _SETTLEMENT.search(text, max(0, m.start() - 50), m.start()):
            continue  # "settlement currency: USD₮ (UST)"
        if _spelt_out(text, m.start(), m[1]):
            continue
        _note_names(text, m, found)
        found.add(m[1], offset + m.start(1), CODED if named else NAMED)


def _scan_written(read: _Text, offset: int, found: _Found, a: int, b: int) -> None:
    """Tickers written as tickers: "(XYZ)", "Sonic (S)", "XYZ/USDT", "BTC-25SEP26"."""
    text, add = read.text, found.add
    _scan_brackets(read, offset, found, a, b)
    if read.one_letter.search(text, a, b):
        for m in _NAME_LETTER().finditer(text, a, b):
            add(m[1], offset + m.start(1), STRUCTURED)
    # A pair and an instrument end in a quote or an expiry: look for that end first.
    if _PAIR_TAIL.search(text, a, b):
        for m in _PAIR.finditer(text, a, b):
            if not _is_example(text, m.start(), m.end()):
                add(m[1], offset + m.start(1), CODED)
    if read.ratios:
        for m in _RATIO_PAIR.finditer(text, a, b):  # "the ETH/BTC ratio": both coins
            add(m[1], offset + m.start(1), CODED)
            add(m[2], offset + m.start(2), CODED)
    if _INSTRUMENT_TAIL.search(text, a, b):
        for m in _INSTRUMENT.finditer(text, a, b):
            add(m[1], offset + m.start(), CODED)


def _scan_codes(read: _Text, offset: int, found: _Found, a: int, b: int) -> None:
    """Contracts and cashtags: "XYZUSDT", "BTCF0:USTF0", "$XYZ"."""
    text, add = read.text, found.add
    if read.funding:
        for m in _FUNDING_PERP().finditer(text, a, b):
            add(m[1], offset + m.start(), CODED)
    if read.kraken:
        for m in _KRAKEN_FUTURE.finditer(text, a, b):
            add(m[1], offset + m.start(1), STRUCTURED)
    if read.contracts and any(cue.search(text, a, b) for cue in read.contracts):
        for m in _CONTRACT.finditer(text, a, b):
            if not found.inverse and m[0][len(m[1]) :] in _INVERSE_QUOTES:
                continue  # "RLUSD" in a text about no derivative is a coin
            if m[0] not in QUOTES and not _is_example(text, m.start(), m.end()):
                add(m[1], offset + m.start(1), CODED)
    if read.cashtags:
        for m in _CASHTAG.finditer(text, a, b):
            add(m[1], offset + m.start(1), NAMED)


def _add_list(
    found: _Found,
    offset: int,
    m: re.Match[str],
    group: int,
    strength: int,
    quotes: frozenset[str] = frozenset(),
) -> None:
    """Every ticker of a matched list ("ABC, DEF and GHI") as evidence of `strength`. A
    word in capitals among other tickers is a ticker too ("Simple Earn for NOT, DOGS and
    TON"): the list names coins, as a listing does."""
    start = offset + m.start(group)
    listed = m[group]
    if "(" in listed or "（" in listed:  # the members' names are not members
        listed = _BRACKETED.sub(lambda b: " " * len(b[0]), listed)
    members = [(t[0], start + t.start()) for t in _IN_LIST.finditer(listed)]
    if (
        len(members) > 1
        and ACTED <= strength < LISTED
        and any(t in WORDS for t, _ in members)
        and any(t not in WORDS and _valid(_base(t), strength) for t, _ in members)
    ):
        strength = LISTED
    # A one-letter ticker among others a context names ("Margin for ZRO, W and ENA") is
    # written as the others are; a one-letter word ("A") is not, and a list with one in it
    # is prose ("for A and B classes").
    letters = (
        len(members) > 1
        and strength >= ACTED
        and not any(len(t) == 1 and t in WORDS for t, _ in members)
    )
    # An acronym of the NEVER list among at least two tickers a listing verb names
    # ("Delist ACH, LOOM and NULS") is written as they are: a coin's ticker.
    coded = (
        strength >= LISTED
        and sum(
            t not in NEVER and t not in WORDS and _valid(_base(t), strength) for t, _ in members
        )
        >= 2
    )
    for token, pos in members:
        if letters and len(token) == 1 and token not in WORDS:
            found.add(token, pos, STRUCTURED, quotes)
        elif coded and token in NEVER and token.isalpha() and len(token) >= 3:
            found.add(token, pos, CODED, quotes)
        else:
            found.add(token, pos, strength, quotes)


_NO_QUOTES: frozenset[str] = frozenset()
_PRODUCT_WORDS = (
    *"vault staking index mining airdrop collateral buy burn earn savings".split(),
    *"product promotion carnival competition challenge campaign festival -".split(),
    *"活期 定期 스테이킹 에어드랍 에어드롭".split(),
)
_Rule = tuple[re.Pattern[str], int, frozenset[str], tuple[str, ...], re.Pattern[str] | None]
# Rules whose first group is the list they name: (pattern, strength, quotes left out, the
# words one of which a text must hold, lower-cased, for the rule to match in it, and what
# a text that holds none of them must match instead, if anything).
_CONTEXT_RULES: tuple[_Rule, ...] = (
    (
        _PRODUCT_OF,
        ACTED,
        _NO_QUOTES,
        _PRODUCT_WORDS,
        None,
    ),
    (
        _CHAIN_OF,
        LISTED,
        _NO_QUOTES,
        ("token swap", "network upgrade", "mainnet", "hard fork", "网络升级"),
        None,
    ),
    (_WALLET_VERB, LISTED, _NO_QUOTES, ("deposit", "withdrawal"), None),
    (_ON_CHAIN, ACTED, _NO_QUOTES, ("layer", "network", "chain"), None),
    (_WALLET_OF, ACTED, _NO_QUOTES, ("deposit", "withdrawal", "입출금"), None),
    (_KOREAN_MARKET, ACTED, QUOTES, ("마켓",), None),
    (
        _MARKET_ON,
        ACTED,
        _NO_QUOTES,
        ("s on", "l on", "welcome"),
        None,
    ),
    (
        _KOREAN_ACT,
        ACTED,
        _NO_QUOTES,
        ("거래", "유의", "상장", "네트워크", "메인넷", "스왑", "리브랜딩"),
        None,
    ),
    (_TRADABLE, LISTED, _NO_QUOTES, ("available for trading",), None),
    (_TRADING_LIVE, ACTED, _NO_QUOTES, ("trading is", "trading are"), None),
    (_FOLLOWING, ACTED, _NO_QUOTES, ("following", "affected"), None),
    (_KINDS_INCLUDING, ACTED, _NO_QUOTES, ("stablecoin",), None),
    (_HEADED, ACTED, _NO_QUOTES, _HEADINGS, None),
    (_LIST, WEAK, QUOTES, ("and", "&"), None),
)
# Finer words for a text where a (?i:word) matches only where the lowered text holds it
# (_caseless): what a match holds, not only the heading's or the product's first word.
# Each holds one of the rule's words above, so a rule runs on no text more.
_FINER_WORDS: dict[re.Pattern[str], tuple[str, ...]] = {
    # Not "-", which nearly every text holds: a match with none of these ends "-30D".
    _PRODUCT_OF: tuple(w for w in _PRODUCT_WORDS if w != "-"),
    _HEADED: (
        *("pre-market trading:", "new listing", "hodler airdrop", "components of"),
        *"launchpool: launchpad: megadrop: candydrop: jumpstart: startup:".split(),
        *"kickstarter: gempool: poolx: alpha:".split(),
        *("new token", "new asset", "new coin", "constituents of"),
    ),
}
# What a match of a rule with none of its finer words matches in the text.
_WORDLESS: dict[re.Pattern[str], re.Pattern[str]] = {_PRODUCT_OF: re.compile(r"-\d+D\b")}
_CASELESS_CONTEXT_RULES = tuple(
    (pattern, strength, quotes, _FINER_WORDS.get(pattern, words), _WORDLESS.get(pattern))
    for pattern, strength, quotes, words, _ in _CONTEXT_RULES
)
# The same for a text in ASCII, or with none of the words' other characters (_WIDE): only
# the words it can hold (most texts; a Korean rule is not even looked at).
_ASCII_CONTEXT_RULES = tuple(
    (pattern, strength, quotes, ascii_words, also)
    for pattern, strength, quotes, words, also in _CASELESS_CONTEXT_RULES
    if (ascii_words := tuple(w for w in words if w.isascii())) or also
)
# "ABC and DEF": the list's last "and" and a ticker's first character. (The words first,
# then the space before them: a literal is looked for faster than a space. A window that
# starts right after that space passes too, as a narrow cue's does.)
_WINDOW_CUES[_LIST] = re.compile(r"and(?<=\sand)\s+[\dA-Z]|&(?<=\s&)\s+[\dA-Z]")
_NARROW_CUES[_LIST] = _WINDOW_CUES[_LIST]
_MARKET_CUE, _NARROW_MARKET_CUE = _WINDOW_CUES[_MARKET_OF], _NARROW_CUES[_MARKET_OF]


def _cued(rules: tuple[_Rule, ...]) -> tuple[tuple[Any, ...], ...]:
    """`rules` with their window cue and their narrow cue, looked up once here: a pattern's
    hash reads all its code, each time (a look-up a rule and a text cost more than the
    words' `in` tests)."""
    return tuple((*rule, _WINDOW_CUES.get(rule[0]), _NARROW_CUES.get(rule[0])) for rule in rules)


_CONTEXT_CUED, _CASELESS_CUED, _ASCII_CUED = map(
    _cued, (_CONTEXT_RULES, _CASELESS_CONTEXT_RULES, _ASCII_CONTEXT_RULES)
)
_CONTRACT_WORD = re.compile(r"\s+(?i:perpetual|contract|futures)")
# What a market must be followed by (_MARKET_OF), lower-cased.
_MARKET_WORDS = (
    *"perpetual futures margin option contract spot pre-market pair".split(),
    *"永续 现货 合约 交易对".split(),
)
_ASCII_MARKET_WORDS = tuple(w for w in _MARKET_WORDS if w.isascii())
_CJK_VERBS = (
    *"上线 上架 下架 下线 首发 暂停 恢复 支持 开通 包括 推出 质押".split(),
    *"上線 下線 首發 暫停 恢復 支援 開通 質押".split(),  # traditional
)
# One scan for them all: their first characters are rare.
_ANY_CJK_VERB = _later(lambda: re.compile("|".join(_CJK_VERBS)))
# Every character of the words above that is not ASCII: a text with none of them holds
# none of those words (no other character lowers to one: they have no case).
_WIDE = re.compile(
    "["
    + "".join(
        sorted(
            {
                c
                for words in (_MARKET_WORDS, _CJK_VERBS, *(rule[3] for rule in _CONTEXT_RULES))
                for word in words
                for c in word
                if not c.isascii()
            }
        )
    )
    + "]"
)
_NETWORK_NAME = _later(
    lambda: re.compile(r"\s*(?:网络|(?i:network))\s*[(（](?:[A-Z]{1,2}RC|BEP|ERC|SPL)\d{0,4}[)）]")
)
_ONE_LETTER = re.compile(r"[(（][A-Z][)）]")
_HALF_PAREN, _HALF_ONE_LETTER = _halfwidth(_PAREN), _halfwidth(_ONE_LETTER)


def _cjk_verbs(text: str, a: int, b: int) -> Iterable[re.Match[str]]:
    """ "上线 XYZ" and "XYZ 将被下架": the lists a CJK verb names, before or after it."""
    yield from _CJK_VERB().finditer(text, a, b)
    yield from _CJK_VERB_AFTER().finditer(text, a, b)


def _scan_contexts(read: _Text, offset: int, found: _Found, a: int, b: int) -> None:
    """Tickers named by the words around them: verbs, markets, products, lists."""
    text = read.text
    if read.naming:
        for m in _NAMING_VERB.finditer(text, a, b):
            if not _NAME_GOES_ON.match(text, m.end()):
                _add_list(found, offset, m, 1, LISTED)
    if read.cjk_verbs:
        _scan_cjk_verbs(text, offset, found, a, b)
    for m in _ACTING_VERB.finditer(text, a, b):
        if _EXAMPLE_AFTER.match(text, m.end()):
            continue  # "format for BTC-USD-SWAP examples"
        margin_type = _MARGIN_TYPE.match(text, m.end())
        _add_list(found, offset, m, 1, ACTED, STABLE_QUOTES if margin_type else _NO_QUOTES)
    if read.staking:
        for m in _STAKE_VERB.finditer(text, a, b):
            _add_list(found, offset, m, 1, ACTED)
    if read.markets and read.market_cue.search(text, a, b):
        for m in _MARKET_OF.finditer(text, a, b):
            # "EUR and USDC spot pairs remain"
            if not (read.remains and _UNAFFECTED.match(text, m.end())):
                _add_market(text, offset, found, m)
    _scan_rules(read, offset, found, a, b)


def _scan_rules(read: _Text, offset: int, found: _Found, a: int, b: int) -> None:
    """The rules of _CONTEXT_RULES the text's words let match, where a window holds the
    cue of one (_WINDOW_CUES)."""
    text = read.text
    for pattern, strength, quotes, cue in read.rules:
        if cue and not cue.search(text, a, b):
            continue
        for m in pattern.finditer(text, a, b):
            _add_list(found, offset, m, 1, strength, quotes)


def _scan_cjk_verbs(text: str, offset: int, found: _Found, a: int, b: int) -> None:
    """ "上线 XYZ", "质押 XYZ": what a CJK verb names, but not the coin staked in a pool
    ("质押 GT 瓜分 XYZ") nor a chain named before its token standard ("TRON网络(TRC20)")."""
    pool = _POOL.search(text)
    for m in _cjk_verbs(text, a, b):
        if not (pool and m[0].startswith("质押")) and not _NETWORK_NAME().match(text, m.end()):
            _add_list(found, offset, m, 1, LISTED)


def _add_market(text: str, offset: int, found: _Found, m: re.Match[str]) -> None:
    """The list of a market ("XYZ Perpetual"); a ratio contract names both its coins
    ("ETHBTC Perpetual" -> ETH, BTC)."""
    subject = _names_quote_as_subject(text, m.end())
    _add_list(found, offset, m, 1, LISTED, _NO_QUOTES if subject else STABLE_QUOTES)
    ratio = _RATIO_CONTRACT.fullmatch(m[1])
    if ratio and _CONTRACT_WORD.match(text, m.end()):
        found.excluded.add(m[1])
        found.add(ratio[1], offset + m.start(1), CODED)
        found.add(ratio[2], offset + m.start(1), CODED)


def _scan_campaigns(read: _Text, offset: int, found: _Found, a: int, b: int) -> None:
    """Amounts ("Share 400,000 MOVE") and the coins staked to take part."""
    text, add = read.text, found.add
    for m in _AMOUNT.finditer(text, a, b):
        before = text[max(0, m.start() - 16) : m.start()]
        if not _ends_with(before, _UNIT_ENDS, _UNIT):
            # A prize amount is a quantity of the coin, even an acronym's ("3,000,000 OMNI").
            strength = CODED if _ends_with(before, _PRIZE_ENDS, _PRIZE) else WEAK
            add(m[1], offset + m.start(1), strength, PRIZE_CURRENCIES)
    for pattern in read.takes_part:
        if pattern is _TRADE_TO_WIN:
            _scan_traded(text, offset, found, a, b)
            continue
        if pattern is _PRIZE_IN:
            for m in pattern.finditer(text, a, b):
                add(m[1], offset + m.start(1), LISTED, QUOTES)
            continue
        for m in pattern.finditer(text, a, b):
            # The coins staked to share another coin are not the subject ("Stake MNT,
            # USDT and ZPHR to share ZPHR" is about ZPHR); staked to share a quote
            # currency ("Lock LUMN to share 500,000 USDT") they are what it promotes.
            prize, held = m["prize"], m["held"]
            if prize in PRIZE_CURRENCIES:
                for t in _IN_LIST.finditer(held):
                    add(t[0], offset + m.start("held") + t.start(), ACTED, QUOTES)
            else:
                found.excluded.update(t[0] for t in _IN_LIST.finditer(held) if t[0] != prize)
                add(prize, offset + m.start("prize"), LISTED)


def _scan_traded(text: str, offset: int, found: _Found, a: int, b: int) -> None:
    """ "Trade SUN to share 500,000 USDT": the coins traded are the subject (even a word's
    ticker), the prize is not."""
    for m in _TRADE_TO_WIN.finditer(text, a, b):
        traded = list(_IN_LIST.finditer(m["held"]))
        # "Trade ORBXUSDT to share 1,000,000 ORBX": the prize is the traded contract's coin.
        if m["prize"] not in {t[0] for t in traded} | {_base(t[0]) for t in traded}:
            found.excluded.add(m["prize"])
        for t in traded:
            found.add(t[0], offset + m.start("held") + t.start(), LISTED, QUOTES)


# Each with the words (lower-cased) one of which a text must hold for it to match.
# In a text where a (?i:word) matches only where the lowered text holds it (_caseless),
# also one of the words after them: the reward of a stake or a trade, the verb of a prize.
_PARTICIPATIONS = (
    (_PARTICIPATION, ("stak", "lock", "hold", "subscrib", "deposit", "commit"), _REWARDS),
    (_PARTICIPATION_BY, _REWARDS, ()),
    (_TRADE_TO_WIN, ("trade",), _REWARDS),
    (_PRIZE_IN, (" worth of ", "usd"), ("share", "win")),
)


_LOWER_LIST = re.compile(r",\s*|\s+and\s+")
_LOWER_WORDS = frozenset(
    "the new a an its our their more all two three spot cross isolated usdⓈ usdt usdc coin "
    "portfolio unified pre perpetual perpetuals futures margin options contract contracts "
    "trading and or of for on in to with copy grid bot bots token tokens crypto coins "
    "leveraged delivery inverse linear quarterly weekly daily more several multiple "
    "selected some these those this that such each every any which your".split()
)


_UNAFFECTED = re.compile(
    r"\s+(?:\w+\s+){0,4}?(?i:remain|continue|(?:are|is|will) not be|unaffected|not affected)\b"
)
_UNAFFECTED_WORDS = ("remain", "continue", "not be", "unaffected", "not affected")
_QUOTE_PAIRS = re.compile(
    r"\s+(?:(?:spot|margin)\s+(?:(?:and|&)\s+(?:spot|margin)\s+)?)?(?:trading\s+)?pairs\b", re.I
)


def _names_quote_as_subject(text: str, end: int) -> bool:
    """ "Add New USDC Trading Pairs": a quote currency followed by "pairs" is the subject."""
    return bool(_QUOTE_PAIRS.match(text, end))


def _is_example(text: str, start: int, end: int) -> bool:
    """An API example: "symbol=BTCUSDT", "e.g. BTCUSDT", "BTC-USD-SWAP examples", or
    inside a path or a query."""
    before = text[max(0, start - 16) : start]
    return (
        before.endswith(("=", "/", '"', "`"))
        or (not _lacks(before, before.lower(), _EXAMPLE_WORDS) and bool(_EXAMPLE.search(before)))
        or bool(_EXAMPLE_AFTER.match(text, end))
    )


def _link_tickers(body_html: str) -> Iterable[str]:
    """Bases of the trade pages the HTML links to, in order."""
    for m in _HREF.finditer(body_html):
        parts = url_parts(unquote(m[1]))
        segments = [s for s in parts.path.split("/") if s] if parts else []
        for i, segment in enumerate(segments):
            if _TRADE_SEGMENT.match(segment) and i + 1 < len(segments):
                rest = "/".join(segments[i + 1 :])
                pair = _LINK_PAIR.search(rest)
                if pair:
                    base = pair[1].split("/")[-1]
                    yield base
                break


def _cashtag_links(body_html: str) -> Iterable[str]:
    if "$" in body_html:
        yield from (m[1] for m in _CASHTAG_ANCHOR.finditer(body_html))
    if "cashtag" in body_html:
        yield from (m[1] for m in _CASHTAG_CLASS.finditer(body_html))


def extract_symbols(*texts: str | None) -> list[str]:
    """Tickers the texts (a title, a body) are about, in order of first appearance."""
    found = _Found(texts)
    offset = 0
    for text in texts:
        if text:
            _scan(text, offset, found)
            offset += len(text) + 1
    return found.ordered()


# A post's market talk in lower case: "btc 又新高了" (a Latin word in a Chinese sentence),
# "rotating into sol", "eth vs btc", "eth looks weak" (a sentence's subject that moves).
_CJK = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"
_POST_LOWER = _later(
    lambda: re.compile(
        r"(?:(?<=" + _CJK + r")|(?<![^\s>]))([a-z]{2,6}[0-9]?)(?=\s?" + _CJK + r")"
        r"|(?i:\binto|\bvs\.?|\bversus)\s+([a-z]{3,4}(?:\s+and\s+[a-z]{3,4})*)\b(?!['’-])"
        r"|(?:^|(?<=[.!?>]\s)|(?<=>))([a-z]{3,4})\s+(?:looks|pump\w*|dump\w*|broke|breaks|reclaim\w*"
        r"|rall(?:y|ies|ied|ying)|holding|bleeding|mooning)\b"
    )
)
_POST_WORDS = frozenset(
    "it its me my this that them the a an and or some more your our their his her one all "
    "any each new gate app web ok lol kyc vip nft usd gold cash fiat oil last next year week "
    "day days you what alts coin bags web3 meme memes pos pow layer layer1 layer2 bot "
    "bots".split()
)


def _scan_post(text: str, offset: int, found: _Found) -> None:
    """Tickers a post's market talk writes in lower case; words and acronyms stay out
    (acting strength: "move chains" names no MOVE)."""
    for m in _POST_LOWER().finditer(text):
        for word in _LOWER_LIST.split(m[1] or m[2] or m[3]):
            if word not in _POST_WORDS and word not in _LOWER_WORDS:
                found.add(word, offset + m.start(), ACTED)


# Sources with market codes of their own, read besides the shared rules.
_SOURCE_CODES = {
    "bitfinex": _scan_bitfinex,
    "upbit": _scan_quote_first,
    "bithumb": _scan_quote_first,
}


def derive_symbols(
    source: str,
    title: str | None,
    body_text: str | None,
    body_html: str | None = None,
    tags: Iterable[str] = (),
) -> list[str]:
    """Tickers of one stored version: structured evidence (trade links, cashtags, ticker
    tags) and the context rules over the title and the body text, in order of first
    appearance (title, body, then what only the HTML or the tags show)."""
    found = _Found((title, body_text), title)
    found.bitfinex = source == "bitfinex"
    if found.bitfinex:  # "USD₮" is Bitfinex's UST (its pairs' ticker)
        title, body_text = (t.replace("USD₮", "UST") if t else t for t in (title, body_text))
        found.texts = [t for t in (title, body_text) if t]
    offset = 0
    own_codes = _SOURCE_CODES.get(source)
    for text in (title, body_text):
        if text:
            _scan(text, offset, found)
            if own_codes:
                own_codes(text, offset, found)
            if title is None:
                _scan_post(text, offset, found)
            offset += len(text) + 1
    late = offset + 1_000_000  # after every text position: evidence with no place in the text
    if body_html:
        if "href" in body_html:
            for i, base in enumerate(_link_tickers(body_html)):
                found.add(base, late + i, STRUCTURED)
        for i, tag in enumerate(_cashtag_links(body_html)):
            found.add(tag, late + 1000 + i, STRUCTURED)
    if source in TICKER_TAG_SOURCES:
        for i, raw_tag in enumerate(tags):
            tag = raw_tag.rstrip(".,!?;:")  # "#DOGS." in a sentence
            if _TAG_TICKER.fullmatch(tag):
                # Gate's tags are tickers; a Square hashtag is one where it is written so.
                # A hashtag that is a word is a topic ("#AI" season), not the coin.
                found.add(tag, late + 2000 + i, STRUCTURED if source == "gate" else ACTED)
    return found.ordered()


# --- event types ----------------------------------------------------------------------------

_DELISTING = _searched(
    "cdeortw下退거상",
    r"\bdelist|\bremoval of .*\b(?:pairs?|instruments?|contracts?|options|futures|perpetuals?)\b"
    r"|\b(?:removes|offline)\b.*\b(?:pairs?|contracts?|perpetuals?)\b"
    r"|\bwill remove\b|\bcease trading|下架|下[线線]|退市"
    r"|상장\s*폐지|거래\s*지원\s*종료|\btrading support termination\b"
    r"|\bend(?:s|ing)? trading support\b",
)
# Title words that say what an announcement does, whatever its category, in this order.
# Read in the lower-cased title (as the post rules in the lower-cased body).
_RULES_STRONG: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("delisting", _DELISTING),
    # A campaign for a listing ("원화 마켓 추가 기념 ... 이벤트") gives something.
    # So does an Earn product advertised with a rate ("理财上线 XYZ 活期产品，年化 8%").
    ("promotion", re.compile(r"기념.*이벤트|\bcelebrat|理财.*(?:年化|\d%)")),
    # A notice of a service that is not a market ("Copy Trading: New Pairs Added").
    (
        "product",
        re.compile(
            r"^(?:[\w.]+ )?(?:copy trading|trading bots?|grid trading|auto-invest)\s*[:：|–—-]"
            r"|\blaunch(?:es|ed)? copy trading\b|\bfor buy crypto\b"
            # An Earn launch with no advertised rate ("理财上线 XYZ 活期产品").
            r"|理财(?![^%]*%)(?!.*年化).*(?:上线|推出)"
        ),
    ),
    (
        "listing",
        _searched(
            "agilnptw上首디마신",
            r"^new listings?:|\bwill list\b|\bnew (?:spot )?trading pairs\b|\bnew digital assets?\b"
            r"|\blaunch(?:es|ed)?\b.*\bfor (?:futures|spot|margin) trading\b"
            r"|\bto list\b|\blists\b|\bgets listed\b"
            r"|\binitial (?:futures )?listing\b|\bnow launched for futures\b"
            r"|\badds? new\b.*\btrading pairs\b|\bwill add new pairs\b|\bpairs added\b"
            r"|\balpha (?:adds|lists|launches)\b"
            r"|上[线線]|上架|首[发發]|마켓 (?:디지털 자산 )?추가|디지털 자산 추가|신규 거래지원"
            r"|(?:마켓|신규)\s*상장(?!\s*(?:폐지|심사|정책|기준))",
        ),
    ),
    (
        "promotion",
        _searched(
            "acglmpstuz0-9.年",
            r"\b(?:competition|challenge|carnival|sprint|grand prix|arena|leaderboard)\b"
            r"|launchpool|launchpad|megadrop|candydrop|candybomb|poolx|gempool|\bshare\b[^.]*\d"
            r"|\bup to [\d.]+%|[\d.]+%\s*ap[ry]\b|\bapr of\b|年化|zero-interest|zero-fee"
            r"|\bzero (?:maker |taker )?fees?\b"
            r"|\btrading week\b",
        ),
    ),
    # A market word in a product notice: bots and grids on pairs, an app's futures screen,
    # fiat payment methods.
    (
        "product",
        _searched(
            "abcglmpst네지",
            r"\bgrid\b|\btrading bots?\b|\bmobile app\b|\bapp \d|\bleverage raised\b"
            r"|\btick sizes?\b|\b(?:monitoring|seed) tag\b|네트워크 추가|지원 네트워크|\bp2p\b"
            r"|\btestnet\b|\bapi (?:updates?|upgrades?|changes?)\b"
            r"|\bbank transfers?\b|\bpayment methods?\b|\b(?:apple|google) pay\b"
            r"|\b(?:convert|copy trading) (?:now )?(?:adds|supports)\b|\bbuy\b.*\bwith\b"
            r"|\bas (?:a )?collateral\b|\bcollateral (?:assets?|currenc(?:y|ies))\b",
        ),
    ),
    (
        "maintenance",
        # "maintenance margin" is a margin rate, not work on a system.
        _searched(
            "dhmnpt",
            r"network upgrade|mainnet upgrade|hard fork|\bmaintenance\b(?! margin)|token swap"
            r"|\bdowntime\b|\bprotocol (?:\d+ )?upgrade\b",
        ),
    ),
    # Regional service limits are facts about the exchange ("Services for Users in the UK").
    (
        "news",
        re.compile(r"(?<!terms of )\bservices?\b.*\bfor users in\b|\bunder (?:mica|fca rules)\b"),
    ),
    # Warnings to users are not reports, whatever the category ("Security").
    (
        "other",
        re.compile(r"security (?:reminder|tips?)|\bbeware\b|phishing|\bscams?\b|\bimpersonat"),
    ),
    (
        "listing",
        _searched(
            "aceflmnopstw",
            r"\blisted\b|\blisting of\b"
            r"|\blaunch(?:es|ed)?\b.*\b(?:perpetual|futures|contracts?|spot trading|margin"
            r"|options)\b|\bwill launch\b.*\b(?:perpetual|futures|contract)"
            r"|\badds?\b.*\bpairs?\b"
            r"|\b(?:adds?|enables?|to enable)\b.*\b(?:margin|futures|perpetual) trading\b"
            r"|\badds?\b.*\b(?:perpetual|futures) contracts?\b"
            r"|\badds?\b.*\bon (?:cross|isolated) margin\b"
            r"|\b(?:new|adds?|launch(?:es|ed)?)\b.*\bperps\b"
            r"|\b(?:perp(?:etual)?s?|futures|pairs?|options|contracts?)\b.*"
            r"\b(?:go(?:es)? live|now live)\b"
            r"|\b(?:options|futures|perpetuals?)\s+launch(?:es|ed)?\b|\bnew\b.*\bexpir(?:y|ies)\b"
            r"|\b(?:margin|futures|perpetual) trading (?:is )?(?:now )?enabled\b"
            r"|\bavailable for trading\b|\btrading (?:is )?now live\b|\bpre-market\b"
            r"|\bopens? trading\b|\bmargin funding (?:is )?now live\b"
            r"|\b(?:margin|futures|perpetual|spot) trading (?:is )?now (?:available|live)\b"
            r"|\btrading pairs? (?:is |are )?now live\b"
            r"|\bnew:?\s+(?:(?:weekly|daily|monthly|quarterly|linear|inverse)\s+)*"
            r"(?:[a-z0-9_-]+\s+)?(?:(?:weekly|daily|monthly|quarterly|linear|inverse)\s+)*"
            r"(?:options|futures|perpetuals?|strikes)\b"
            r"|\badditional product:.*\b(?:perpetual|futures|contract)"
            r"|\bexpands?\b.*\b(?:perpetual|futures|contracts)\b"
            r"|f0:ustf0\b.*\bnow (?:available|live)\b",
        ),
    ),
    # The same, in the new sources' words (issue 13), apart: each word start is tried once.
    (
        "listing",
        _searched(
            "nsazmfpdtalie",
            r"new (?:spot |margin |futures )*(?:trading )?pairs\b|strikes? added\b"
            r"|(?:perpetual|futures)(?: contracts?)? (?:is |are )?now available\b"
            r"|(?:perpetual|futures)(?: contracts?)? adds?\b|spot (?:will )?launch(?:es|ed)?\b"
            r"|adds?\b.*/(?:usdt|usdc|usd|btc|eth)\b.*\bto (?:spot|margin|futures) trading\b"
            r"|adds?\b.*\bstrikes\b|^new (?:tokens?|coins?)(?: on [\w.]+)?:|zone welcomes\b"
            r"|(?:margin|futures|perpetual) trading\b.*\bnow enabled\b"
            r"|(?:digital assets?|tokens?) added\b"
            r"|added to (?:the )?(?:krw|btc|usdt|usdc|idr|sgd|thb)"
            r"(?:(?:,| and) (?:krw|btc|usdt|usdc|idr|sgd|thb))* markets?\b"
            r"|announcement on launching\b"
            r"|launch(?:es|ed)?\b[^/]*?\b[a-z0-9]{2,15}/(?:usdt|usdc|usd|btc|eth)\b"
            r"|(?:introduc\w*|launch\w*)\b.*(?:-\d{1,2}(?:" + _MONTHS + r")\d{2}|-perpetual)\b"
            r"|introduc\w*(?: of)?(?: (?:new|linear|inverse|usdc|usdt|daily|weekly|monthly"
            r"|quarterly|[a-z0-9]{2,5}(?= (?:options|futures|perpetuals?|linear|inverse|usdc))))+"
            r" (?:options|futures|perpetuals?)\b|expir(?:y|ies)\b.*\bnow (?:available|live)\b",
            word=True,
        ),
    ),
)
# Weaker title words, read after a category that says what it is.
_RULES_WEAK: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "other",
        _searched(
            "befprstu정약처개",
            r"terms of (?:service|use)|privacy (?:policy|notice)|user agreement"
            r"|security reminder|beware|\bfake\b|phishing|scam|risk warning"
            r"|protect your account|sim swap|\bexpiry of\b|(?<!수수료 )정책|약관|처리방침|개인정보"
            r"|risk disclosure",
        ),
    ),
    # Regional service limits are facts about the exchange, as licences are.
    (
        "news",
        _searched(
            "acfilmrsuvw서",
            r"\bincident report\b|\busers in the (?:eea|eu|uk|us)\b|\bresidents?\b"
            r"|\bresults of\b|\bwinners\b|\blicen[cs]|\bseed round\b|\bfunding round\b"
            r"|\bventures\b|\bmeet (?:us|[\w.]+) at\b|\bconference\b|\bsummit\b"
            r"|\bacqui(?:sition|res?|red)\b|\bawards?\b(?! pool)|\bregister(?:s|ed)? (?:with|as)\b"
            r"|\bcharter\b|\bwins\b"
            r"|\bclients (?:in|from)\b|\bservices (?:in|for)\b|서비스 이용 제한",
        ),
    ),
    ("news", _searched("ipan", r"incident\b|post-mortem\b|appoints?\b|now part of\b", word=True)),
    (
        "maintenance",
        _searched(
            "dhmnrstuw充升恢暂维메재점중지토업리티스",
            r"maintenance(?! margin)|network upgrade|system upgrade|wallet upgrade|hard fork"
            r"|\bsuspen(?:ds?|ded|ding|sion)\b|\bresum(?:e|ed|es|ption)\b|\bmainnet upgrade"
            r"|token swap|migration|rebrand|\bdelay(?:ed|s)?\b"
            r"|\bupgrade the .*\b(?:network|wallet)\b"
            r"|维护|升级|暂停|恢复|充提|점검|지연|중단|중지|재개|메인넷|토큰 스왑|업그레이드"
            r"|리브랜딩|티커 변경|스왑",
        ),
    ),
    (
        "maintenance",
        _searched(
            "ptos",
            r"paus(?:e|es|ed|ing)\b|ticker change\b|opens? .*\b(?:deposits|withdrawals)\b"
            r"|supports?\b.*\b(?:upgrade|hard fork)\b",
            word=True,
        ),
    ),
    (
        "promotion",
        _searched(
            "abcghjlprstuvwz奖活空에이瓜大",
            r"airdrop|campaign|competition|challenge|\bshare\b.*\d|reward|bonus|promotion"
            r"|giveaway|launchpool|launchpad|candydrop|gempool|jumpstart|poolx|carnival"
            r"|welcome gift|cashback|trade-to-earn|hodler|voucher|zero[- ]fee|\bup to\b.*\bap[ry]\b"
            r"|\brefer|\bprize|\bwin\b[^.]*\d|\brebates?\b|活动|空投|奖励|瓜分|大赛|이벤트|에어드랍",
        ),
    ),
    ("promotion", _searched("ime", r"invite\b|mystery box|events?$", word=True)),
    (
        "news",
        _searched(
            "abcilmprs공서유재지사신",
            r"proof of reserves|\breport\b|registration|licen[cs]e|partner|\bburn\b"
            r"|\bacquir|(?<!-)\binvests?\b|\bresults?\b|\bresidents?\b|\bclients (?:in|from)\b"
            r"|\bservices (?:in|for)\b"
            r"|\bmica\b|서비스 이용 제한|유통량|공시|지갑 이동|재단"
            r"|사업자 (?:갱신 )?신고|신고 수리",
        ),
    ),
    (
        "other",
        _searched(
            "eprstu정",
            r"terms of (?:service|use)|privacy policy|user agreement|security reminder"
            r"|phishing|scam|risk warning|protect your account|sim swap|\bexpiry of\b"
            r"|(?<!수수료 )정책",
        ),
    ),
    (
        "product",
        _searched(
            "abcdefhiklmnoprstuvw分费네드등서스업유인트한수호",
            r"\bapi\b|introduc|\bnow (?:supports|live)\b|\bwhat(?:’s|'s| is) new\b|\bupdates?\b"
            r"|\bnew fields?\b|feature"
            r"|copy trading|auto-invest|\bearn\b|\bcard\b|\bwallet\b|\bfee|\bleverage\b"
            r"|\btiers?\b|\bmargin\b"
            r"|dividend|\bconvert\b|integration|\bsupport|adjust|\bapp\b|mobile|released"
            r"|interface|portfolio|\borders?\b|block trade|funding rate|risk matrix|haircut"
            r"|\bchanges?\b|staking|\bnew:|\bkyc\b|\bverification\b"
            r"|\blimits?\b|\bsettlement\b"
            r"|分红|费率|유의 종목|유의 촉구|업데이트|한도|인증|서비스 출시"
            r"|트래블룰|등급|네트워크 추가|스테이킹|드롭|수수료|서비스 종료|호가",
        ),
    ),
    (
        "product",
        _searched(
            "fnadp",
            r"funding (?:now )?(?:available|books?|market)\b|accounts?\b|(?:demo|paper) trading\b"
            r"|now (?:on|available on) (?:the )?\w+ (?:network|chain)\b",
            word=True,
        ),
    ),
)

# A category name (or key: "coin_listings", "announcements-delistings") -> event type.
_CATEGORY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("delisting", re.compile(r"delist|removal|거래지원종료", re.I)),
    (
        "maintenance",
        re.compile(
            r"maintenance|suspension|resumption|wallet|system|deposit|withdraw|입출금|점검", re.I
        ),
    ),
    (
        "promotion",
        re.compile(
            r"activit|promotion|competition|airdrop|jumpstart|campaign|launchpool|event|이벤트",
            re.I,
        ),
    ),
    (
        "listing",
        re.compile(r"listing|new crypto|new fiat|new spot|new futures|^list$|마켓 추가", re.I),
    ),
    ("news", re.compile(r"news|security|burn|report|공시", re.I)),
    (
        "product",
        re.compile(
            r"api|product|update|earn|web3|p2p|vip|institution|fee|dividend|trading|staking"
            r"|kraken pro|^nft$|거래유의|업데이트",
            re.I,
        ),
    ),
    ("other", re.compile(r"^others?$", re.I)),
)
# Categories that hold every kind of notice ("Latest News", "안내"): what they say is
# read after the title's weaker words, not before.
_GENERIC_CATEGORY = re.compile(
    r"^(?:latest )?(?:\w+ )?(?:news|announcements?)$|^others?$|^안내$|^거래$|^디지털 자산$", re.I
)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def _category_words(category: str) -> str:
    words = _CAMEL.sub(" ", category).replace("_", " ").replace("-", " ").strip()
    return words.removeprefix("announcements ")  # OKX's keys


@functools.lru_cache(maxsize=1024)
def category_event(category: str | None) -> str | None:
    """What a source's category says about the event type, None when nothing
    ("Latest Announcements"). Reads names and keys alike ("coin_listings")."""
    if not category:
        return None
    words = _category_words(category)
    for event, pattern in _CATEGORY_RULES:
        if pattern.search(words):
            return event
    return None


@functools.lru_cache(maxsize=1024)
def _generic(category: str | None) -> bool:
    return not category or bool(_GENERIC_CATEGORY.match(_category_words(category)))


_MARKET_EVENTS = frozenset({"listing", "delisting"})


def classify_event(title: str | None, hint: str | None = None, *, generic: bool = False) -> str:
    """The shared event type: title words that plainly say what it does (delist, list)
    win, then the category's meaning (`hint`, one of EVENT_TYPES), then weaker title
    words. A `generic` hint (a "Latest News" category) comes after the weaker words.
    A campaign filed as a listing or a delisting is one (a Launchpool that also opens the
    coin's spot market): a market that opens or closes outranks what it gives."""
    title = title.lower() if title else ""  # the rules are lower case (no re.I: faster)
    holds = title.__contains__
    for event, pattern, words in _STRONG:
        if (words is None or any(map(holds, words))) and pattern.search(title):
            if event == "promotion" and hint in _MARKET_EVENTS and not generic:
                return hint
            return event
    if hint in EVENT_TYPES and hint != "other" and not generic:
        return hint
    for event, pattern, words in _WEAK:
        if (words is None or any(map(holds, words))) and pattern.search(title):
            return event
    return hint if hint in EVENT_TYPES else "other"


# A post (no title) is people's talk: news when it reports, promotion when it advertises
# a campaign, other when it is opinion or chat.
_POST_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Chat that asks the others ("anyone else ...?") reports nothing, whatever it names.
    ("other", re.compile(r"\banyone else\b|\bwho else\b|冲不冲")),
    (
        "promotion",
        re.compile(
            r"\bama\b|candydrop|launchpool|\bposting challenge|airdrop #?\d+ is live"
            r"|\bshare [\d,.]+|\bcollect\b.*\bto share\b|\btrading competition\b"
            r"|\bprize pool\b|\bchallenge is live\b|\bwin [\d,.]+|\bcontest\b|\bgiveaway\b"
            r"|瓜分|奖池|年化|新用户专享|新人福利|体验金",
        ),
    ),
    (
        "news",
        re.compile(
            r"\bbreaking\b(?! out)|快讯|\bcame in (?:at|above|below)\b|将上线|\bwill list\b"
            r"|\bunlock\b|\bapproves?\b|\bnow live\b"
            r"|\bpaused\b|warning list|being delisted|要被下架|\bsaid\b|\bper \w+ sources\b"
            r"|listing date|\bvolumes? up\b"
            # What institutions and chains did: rates, flows, filings, mints, upgrades.
            r"|宣布|据报道|降息|加息|今日上线|\bcuts? rates\b|\brate (?:cut|hike)s?\b|\binflows?\b"
            r"|\boutflows?\b|\bmints?\b|\bfiling\b|\bon mainnet\b|\bmainnet is (?:open|live)\b"
            r"|\bhits? a record\b|\bsupply\b.*\bcrossed\b|\bmoved\b.*\bto a new wallet\b"
            r"|(?<!\bi )(?<!\bwe )\b(?:moved|transferred|sent) (?:another )?[\d,.]+ ?[kmb]? "
            r"|\bsec\b|\bdelays? decision\b",
        ),
    ),
)


# The rules with the words one of which a text must hold for each to match (_needed).
_STRONG, _WEAK, _POST = (
    tuple((event, pattern, _needed(pattern)) for event, pattern in rules)
    for rules in (_RULES_STRONG, _RULES_WEAK, _POST_RULES)
)


def derive_event(title: str | None, category: str | None, body_text: str | None = None) -> str:
    """The event type of one stored version; a post (no title) is read by its body."""
    if title is None and body_text:
        body = body_text.lower()
        holds = body.__contains__
        for event, pattern, words in _POST:
            if (words is None or any(map(holds, words))) and pattern.search(body):
                return event
        return "other"
    event = classify_event(title, category_event(category), generic=_generic(category))
    if event == "promotion" and body_text and _lists_in_body(body_text):
        return "listing"  # a Launchpool whose body lists the coin opens its market
    return event


# "will then list XYZ", "XYZ/USDT (spot) trading opens at ...": the body opens a market.
# (Case-insensitive after a class of its first letters, as _verbs: a pattern that starts with
# "\b" is tried at every position of the body, a class only at those letters.)
_BODY_LISTS = re.compile(
    r"[WwTt将](?:(?<=将)上线|(?<!\w.)"
    + _after_first(
        r"will (?:then )?list\b",
        r"trading (?:will )?opens?\b",
        r"will open (?:spot )?trading (?:for|of)\b",
    )
    + ")"
)
_BODY_LIST_WORDS = ("will list", "will then list", "trading open", "will open", "将上线")
_NEGATED = re.compile(r"(?i:\bnot\b|n't\b|\bno guarantee\b|不代表|不意味)")


def _lists_in_body(body_text: str) -> bool:
    """The body says the coin will be listed, not that it will not ("This does not mean
    Binance will list NOT")."""
    if _lacks(body_text, body_text.lower(), _BODY_LIST_WORDS):
        return False
    for m in _BODY_LISTS.finditer(body_text):
        sentence = body_text.rfind(".", 0, m.start()) + 1
        if not _NEGATED.search(body_text, sentence, m.start()):
            return True
    return False


class Derived(NamedTuple):
    symbols: list[str]
    event_type: str


def derive(
    source: str,
    title: str | None,
    body_text: str | None,
    body_html: str | None,
    tags: Iterable[str],
    category: str | None,
) -> Derived:
    """`symbols` and `event_type` of one stored version, from its stored fields only."""
    tags = list(tags)
    return Derived(
        derive_symbols(source, title, body_text, body_html, tags),
        derive_event(title, category, body_text),
    )

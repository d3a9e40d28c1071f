"""The HAProxy appliance, the second transport: commands run on it, and what they tell.

    commands  the seam: a CommandRunner runs one command with a timeout (over SSH for a real
              appliance; a RecordedRunner answers from recorded output in tests); a Fact is a
              command plus a pure parser of its output, gathered through any runner
    facts     the appliance's facts the verify and repair stages read: interfaces (``ip -j addr``,
              or the article's ``ip a``), failed units
"""

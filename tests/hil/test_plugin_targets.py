"""The plugin's targets beyond the sim: the virtual Pico's skips and markers, --time-scale."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

MARKED = """
    import pytest

    @pytest.fixture
    def hil_target():
        return "fake"

    def test_needs_the_node(hil_target):
        pass

    @pytest.mark.emulator_limit(reason="ADC reads 0")
    def test_adc():
        pass

    @pytest.mark.slow_target(reason="a thousand commands")
    def test_many():
        pass

    @pytest.mark.power_cut(reason="cuts the power")
    def test_cut():
        pass

    @pytest.mark.hardware(reason="GPIO mirroring")
    def test_gpio():
        pass

    def test_plain():
        pass
"""


def test_vpico_without_a_uf2_skips_the_node_tests_naming_the_variable(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ILRS_VPICO_UF2", raising=False)
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("--target", "vpico", "-rs")
    result.assert_outcomes(passed=2, skipped=4)  # the node, the limit, the slow, the GPIO
    result.stdout.fnmatch_lines([
        "*virtual Pico: vpico: no MicroPython UF2*$ILRS_VPICO_UF2*",
        "*needs a real Pico (GPIO mirroring)*"])


def test_markers_on_the_virtual_pico(pytester: pytest.Pytester,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    uf2 = pytester.path / "RPI_PICO.uf2"
    uf2.write_bytes(b"")
    monkeypatch.setenv("ILRS_VPICO_UF2", str(uf2))
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("--target", "vpico", "-rs")
    result.assert_outcomes(passed=3, skipped=3)
    result.stdout.fnmatch_lines([
        "*emulator limit on the virtual Pico: ADC reads 0*",
        "*too slow to be worth it on vpico (time scale about 34): a thousand*",
        "*needs a real Pico*"])


def test_markers_on_sim_and_on_a_board(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("--target", "sim", "-rs")
    result.assert_outcomes(passed=5, skipped=1)  # only the hardware test
    result = pytester.runpytest("--target", "loop://", "-rs")
    result.assert_outcomes(passed=5, skipped=1)  # no power cut on a board
    result.stdout.fnmatch_lines(["*needs a power cut (the sim or the virtual Pico)*"])


def test_a_large_time_scale_skips_slow_tests_anywhere(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("--target", "loop://", "--time-scale", "12", "-rs")
    result.assert_outcomes(passed=4, skipped=2)
    result.stdout.fnmatch_lines(["*too slow*(time scale 12)*"])
    result = pytester.runpytest("--target", "loop://", "--time-scale", "3")
    result.assert_outcomes(passed=5, skipped=1)


def test_time_scale_option_ini_env(pytester: pytest.Pytester,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("""
        from hil.plugin import time_scale_of

        def test_scale(request):
            print("SCALE=%s" % time_scale_of(request.config))
    """)
    monkeypatch.delenv("HIL_TIME_SCALE", raising=False)
    pytester.runpytest("-s").stdout.fnmatch_lines(["*SCALE=None*"])
    pytester.runpytest("-s", "--time-scale", "34").stdout.fnmatch_lines(["*SCALE=34.0*"])
    monkeypatch.setenv("HIL_TIME_SCALE", "7")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*SCALE=7.0*"])
    result = pytester.runpytest("-s", "--time-scale", "0.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--time-scale '0.5': a number of at least 1*"])


def test_pytest_timeout_follows_the_scale(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntimeout = 300\n")
    pytester.makepyfile("""
        import pytest

        @pytest.fixture
        def hil_target():
            return "fake"

        def test_node(request, hil_target):
            print("LIMIT=%s" % request.node.get_closest_marker("timeout").args[0])

        def test_unit(request):
            assert request.node.get_closest_marker("timeout") is None
    """)
    result = pytester.runpytest("-s", "--target", "loop://", "--time-scale", "3")
    result.stdout.fnmatch_lines(["*LIMIT=900.0*"])
    result.assert_outcomes(passed=2)


def test_a_bad_vpico_option_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--target", "vpico://?uf2=/x.uf2&speed=3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--target vpico://?uf2=/x.uf2&speed=3: *unknown vpico "
                                 "option 'speed' (uf2, flash, deploy, key)*"])

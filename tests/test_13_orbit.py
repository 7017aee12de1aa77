"""sarpipe.orbit: Lagrange orbit interpolation, quaternion slerp, geometric Doppler centroid (analytic geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from sarpipe import orbit
from sarpipe.errors import InputError

GM = 3.986004418e14  # m^3/s^2
OMEGA_EARTH = 7.2921150e-5  # rad/s
WAVELENGTH = 0.2360571  # m (L band)


def circular_orbit(t: np.ndarray, radius: float = 7.07e6, inclination: float = np.radians(98.0)):
    """Analytic circular Kepler orbit (inertial = ECEF of a non-rotating Earth): position, velocity."""
    w = np.sqrt(GM / radius**3)
    a = w * t
    x, y = radius * np.cos(a), radius * np.sin(a)
    vx, vy = -radius * w * np.sin(a), radius * w * np.cos(a)
    ci, si = np.cos(inclination), np.sin(inclination)
    pos = np.stack([x, y * ci, y * si], -1)
    vel = np.stack([vx, vy * ci, vy * si], -1)
    return pos, vel


def test_lagrange_orbit_matches_circular_kepler_orbit():
    t_sv = np.arange(28) * 60.0  # PALSAR-like: a state vector each minute
    pos, vel = circular_orbit(t_sv)
    rng = np.random.default_rng(1)
    t = rng.uniform(t_sv[0], t_sv[-1], 200)
    p, v = orbit.interpolate_orbit(t_sv, pos, vel, t)
    p_ref, v_ref = circular_orbit(t)
    assert np.max(np.linalg.norm(p - p_ref, axis=-1)) < 1e-3  # m
    assert np.max(np.linalg.norm(v - v_ref, axis=-1)) < 1e-6  # m/s
    # at a state vector the interpolant returns it
    p0, v0 = orbit.interpolate_orbit(t_sv, pos, vel, t_sv[5])
    np.testing.assert_allclose(p0, pos[5], atol=1e-6)


def test_orbit_refuses_times_outside_and_bad_shapes():
    t_sv = np.arange(5) * 60.0
    pos, vel = circular_orbit(t_sv)
    with pytest.raises(InputError, match="outside"):
        orbit.interpolate_orbit(t_sv, pos, vel, 241.0)
    with pytest.raises(InputError, match="orbit"):
        orbit.interpolate_orbit(t_sv, pos[:, :2], vel, 10.0)


def axis_angle_quaternion(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])


def test_quaternion_convention_is_scalar_first_hamilton():
    m = orbit.quaternion_to_matrix(axis_angle_quaternion([0, 0, 1], np.pi / 2))
    np.testing.assert_allclose(m @ [1, 0, 0], [0, 1, 0], atol=1e-15)  # +90 deg about z takes x to y
    np.testing.assert_allclose(m @ [0, 0, 1], [0, 0, 1], atol=1e-15)


def test_slerp_follows_a_constant_rate_rotation():
    axis = [0.3, -0.5, 0.8]
    rate = 0.02  # rad/s
    t_q = np.arange(10.0)
    qs = np.array([axis_angle_quaternion(axis, rate * t) for t in t_q])
    qs[3] *= -1  # the same rotation; slerp must take the short arc
    t = np.array([0.25, 2.5, 3.7, 8.99])
    got = orbit.interpolate_attitude(t_q, qs, t)
    for ti, qi in zip(t, got):
        ref = axis_angle_quaternion(axis, rate * ti)
        assert min(np.abs(qi - ref).max(), np.abs(qi + ref).max()) < 1e-12


def antenna_frame(pos, vel, off_nadir, squint=0.0, side="right"):
    """RCS-to-ECEF matrix: boresight off_nadir from geocentric nadir, on the look side, then turned by ``squint``
    towards the velocity about the elevation axis; +Y = -velocity (zero squint)."""
    down = -pos / np.linalg.norm(pos)
    along = vel - (vel @ down) * down
    along /= np.linalg.norm(along)
    right = np.cross(down, along) * (1 if side == "right" else -1)  # forward-right-down: right = down x forward
    bore0 = np.cos(off_nadir) * down + np.sin(off_nadir) * right
    elev = np.cross(-along, bore0)  # X = Y x Z with Y = -along
    bore = np.cos(squint) * bore0 + np.sin(squint) * along
    y = np.cross(bore, elev)
    return np.stack([elev, y, bore], axis=1)


def ellipsoid_distance(s, u):
    """Independent ray-ellipsoid distance (plain numpy quadratic)."""
    d = np.array([orbit.WGS84_A, orbit.WGS84_A, orbit.WGS84_B])
    a, b, c = np.sum((u / d) ** 2), 2 * np.sum(s * u / d**2), np.sum((s / d) ** 2) - 1
    return (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a)


def test_zero_squint_on_a_non_rotating_earth_is_zero_doppler():
    pos, vel = circular_orbit(np.array([300.0]))
    pos, vel = pos[0], vel[0]
    rot = antenna_frame(pos, vel, np.radians(34.3))
    ranges = np.linspace(8.3e5, 8.9e5, 7)
    fd = orbit.doppler_from_geometry(pos, vel - (vel @ pos) * pos / (pos @ pos), rot, ranges, WAVELENGTH)
    assert np.all(np.abs(fd) < 1e-6)
    targets = orbit.boresight_targets(pos, rot, ranges)
    d = np.array([orbit.WGS84_A, orbit.WGS84_A, orbit.WGS84_B])
    np.testing.assert_allclose(np.sum((targets / d) ** 2, -1), 1.0, atol=1e-12)  # on the ellipsoid
    np.testing.assert_allclose(np.linalg.norm(targets - pos, axis=-1), ranges, atol=1e-4)
    assert np.all(np.abs((targets - pos) @ rot[:, 1]) < 1e-6)  # in the zero-azimuth plane


@pytest.mark.parametrize("squint_deg", [-2.0, 0.5, 3.0])
def test_known_squint_gives_2v_sin_squint_over_lambda_on_the_boresight(squint_deg):
    pos, vel = circular_orbit(np.array([900.0]))
    pos, vel = pos[0], vel[0]
    squint = np.radians(squint_deg)
    rot = antenna_frame(pos, vel, np.radians(30.0), squint)
    r_bore = ellipsoid_distance(pos, rot[:, 2])
    fd = orbit.doppler_from_geometry(pos, vel, rot, [r_bore], WAVELENGTH)[0]
    v_along = np.linalg.norm(vel - (vel @ pos) * pos / (pos @ pos))
    # the orbit is circular, so v is horizontal and the boresight's component along it is sin(squint)
    assert fd == pytest.approx(2 * v_along * np.sin(squint) / WAVELENGTH, abs=1e-3)


def test_earth_rotation_doppler_equals_the_inertial_relative_velocity():
    """ECEF satellite velocity (inertial minus omega x r) against inertial satellite and target velocities."""
    pos_i, vel_i = circular_orbit(np.array([0.0]), inclination=np.radians(90.0))
    pos, vel_i = pos_i[0], vel_i[0]  # over the equator, flying north
    omega = np.array([0.0, 0.0, OMEGA_EARTH])
    vel_ecef = vel_i - np.cross(omega, pos)
    rot = antenna_frame(pos, vel_i, np.radians(30.0))  # not yaw-steered: plane normal to the inertial velocity
    ranges = np.array([7.9e5, 8.2e5])
    fd = orbit.doppler_from_geometry(pos, vel_ecef, rot, ranges, WAVELENGTH)
    targets = orbit.boresight_targets(pos, rot, ranges)
    u = (targets - pos) / ranges[:, None]
    ref = 2 / WAVELENGTH * np.sum((vel_i - np.cross(omega, targets)) * u, -1)  # both inertial velocities
    np.testing.assert_allclose(fd, ref, rtol=1e-9)
    assert np.all(np.abs(fd) > 1500)  # equatorial Earth-rotation Doppler at L band: a few kHz, not zero


def test_geometric_doppler_centroid_needs_orbit_and_attitude():
    with pytest.raises(InputError, match="orbit_time"):
        orbit.geometric_doppler_centroid({"carrier_frequency": 1.27e9}, [8e5], time=0.0)

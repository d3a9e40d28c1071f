"""The files the appliance's image ships under ``/etc/vmware``, byte for byte: first boot appends to them.

Read in haproxytech/vmware-haproxy at each tag, ``ansible/roles/vmware/files/etc/vmware/anyip-routes.cfg``
and ``route-tables.cfg``: the same two files (blobs d48af78 and 092b159) from v0.1.7 to v0.2.0. Data,
not code: their comments, kept as the image has them (a trailing space included), since a file the
appliance holds is compared whole. ``workload-networks.cfg`` (v0.2.0) is not shipped: first boot makes it.
"""

from __future__ import annotations

__all__ = ["ANYIP_ROUTES_CFG", "ROUTE_TABLES_CFG", "SHIPPED", "USERDATA_TXT"]

ANYIP_ROUTES_CFG = "/etc/vmware/anyip-routes.cfg"
ROUTE_TABLES_CFG = "/etc/vmware/route-tables.cfg"

SHIPPED = {
    ANYIP_ROUTES_CFG: (
        "#\n"
        "# Configuration file that contains a line-delimited list of CIDR values\n"
        "# that define the network ranges used to bind the load balancer's frontends \n"
        "# to virtual IP addresses.\n"
        "#\n"
        "# * Lines beginning with a comment character, #, are ignored\n"
        "# * This file is used by the anyip-routes service\n"
        "#\n"
    ),
    ROUTE_TABLES_CFG: (
        "#\n"
        "# Configuration file that contains a line-delimited list of values used to\n"
        "# create route tables on which default gateways are defined. This enables\n"
        "# the use of IP policy to ensure traffic to interfaces that do not use the\n"
        "# default gateway is routed correctly.\n"
        "#\n"
        "# * Lines beginning with a comment character, #, are ignored\n"
        "# * This file is used by the route-tables service\n"
        "# \n"
        "# Each line that contains a value must adhere to the following,\n"
        "# comma-separated format:\n"
        "#\n"
        "#   <TableID>,<TableName>,<MACAddress>,<NetworkCIDR>,<Gateway4>\n"
        "#\n"
        "# The fields in the above format are as follows:\n"
        "#\n"
        "# * TableID      The route table ID. This value should be an integer between\n"
        "#                2-250. Please see /etc/iproute2/rt_tables for a list of the\n"
        "#                route table IDs currently in use, including reserved IDs.\n"
        "#\n"
        "# * TableName    The name of the route table. This value will be appended\n"
        "#                to a constant prefix, used to identify route tables managed\n"
        "#                by the route-tables service.\n"
        "#\n"
        "# * MACAddress   The MAC address of the interface connected to the network\n"
        "#                specified by NetworkCIDR\n"
        "#\n"
        "# * NetworkCIDR  The CIDR of the network to which the interface by MACAddress\n"
        "#                is connected\n"
        "#\n"
        "# * Gateway4     The IPv4 address of the gateway used by the network specified\n"
        "#                by NetworkCIDR\n"
        "#\n"
        "# For example, the following lines are valid values:\n"
        "#\n"
        "#   2,frontend,00:00:00:ab:cd:ef,192.168.1.0/24,192.168.1.1\n"
        "#   3,workload,00:00:00:12:34:56,192.168.2.0/24,192.168.2.1\n"
        "#\n"
        "\n"
    ),
}

USERDATA_TXT = {
    'v0.1.7': (
        '## template: jinja\n'
        '#cloud-config\n'
        'chpasswd:\n'
        '  list:\n'
        '    - root:ROOT_PWD_FROM_OVFENV\n'
        '\n'
        'runcmd:\n'
        '    - if CREATE_DEFAULT_CA; then /var/lib/vmware/retry.sh "new-ca.sh "{{ ds.meta_data.loca'
        'l_ipv4 }}" /etc/haproxy"; fi\n'
        '    - /var/lib/vmware/retry.sh "new-cert.sh -1 /etc/haproxy/ca.crt -2 /etc/haproxy/ca.key '
        '-3 "127.0.0.1,{{ ds.meta_data.network.interfaces.by_ipv4.keys()|join(\',\') }}" -4 "localhos'
        't" "{{ ds.meta_data.hostname }}" /etc/haproxy" 2>&1 | tee /var/log/vmware/new_cert.log\n'
        '    - vmware-rpctool "info-set guestinfo.dataplaneapi.cacert $(base64 -w0 /etc/haproxy/ca.crt)"\n'
    ),
    'v0.1.8': (
        '## template: jinja\n'
        '#cloud-config\n'
        'chpasswd:\n'
        '  list:\n'
        '    - root:ROOT_PWD_FROM_OVFENV\n'
        '\n'
        '# Generate certificates using pre-seeded entropy provided by haveged.\n'
        'runcmd:\n'
        '    - dd if=/dev/random of=/tmp/.random bs=256 count=1\n'
        '    - if true; then RANDFILE=/tmp/.random /var/lib/vmware/retry.sh "new-ca.sh \'{{ ds.meta_'
        'data.local_ipv4 }}\' /etc/haproxy"; fi\n'
        '    - dd if=/dev/random of=/tmp/.random bs=256 count=1\n'
        '    - RANDFILE=/tmp/.random /var/lib/vmware/retry.sh "new-cert.sh -1 /etc/haproxy/ca.crt -'
        '2 /etc/haproxy/ca.key -3 "127.0.0.1,{{ ds.meta_data.network.interfaces.by_ipv4.keys()|join'
        '(\',\') }}" -4 "localhost" "{{ ds.meta_data.hostname }}" /etc/haproxy" 2>&1 | tee /var/log/v'
        'mware/new_cert.log\n'
        '    - vmware-rpctool "info-set guestinfo.dataplaneapi.cacert $(base64 -w0 /etc/haproxy/ca.crt)"\n'
    ),
    'v0.1.10': (
        '## template: jinja\n'
        '#cloud-config\n'
        'chpasswd:\n'
        '  list:\n'
        '    - root:ROOT_PWD_FROM_OVFENV\n'
        '\n'
        '# Generate certificates using pre-seeded entropy provided by haveged.\n'
        'runcmd:\n'
        '    - dd if=/dev/random of=/tmp/.random bs=256 count=1\n'
        '    - if true; then RANDFILE=/tmp/.random /var/lib/vmware/retry.sh "new-ca.sh -n \'{{ ds.me'
        'ta_data.local_ipv4 }}\' /etc/haproxy"; fi\n'
        '    - dd if=/dev/random of=/tmp/.random bs=256 count=1\n'
        '    - RANDFILE=/tmp/.random /var/lib/vmware/retry.sh "new-cert.sh -n -1 /etc/haproxy/ca.cr'
        't -2 /etc/haproxy/ca.key -3 "127.0.0.1,{{ ds.meta_data.network.interfaces.by_ipv4.keys()|j'
        'oin(\',\') }}" -4 "localhost" "{{ ds.meta_data.hostname }}" /etc/haproxy" 2>&1 | tee /var/lo'
        'g/vmware/new_cert.log\n'
        '    - vmware-rpctool "info-set guestinfo.dataplaneapi.cacert $(base64 -w0 /etc/haproxy/ca.crt)"\n'
    ),
}
